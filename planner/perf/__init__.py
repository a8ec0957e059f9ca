"""Performance: step work, roofline step times, memory fit, serving and queueing, and the one vectorised
replica evaluator that `estimate()`, the sweep and the optimizer share. Builds on planner.model and planner.data."""
