"""Model advice: benchmark scores, license policies and hardware checks behind `recommend`."""
