"""Data: typed catalog records, loading and validating `data/*.csv` and model configs, and the importers of
user prices and usage (the only I/O besides the exporters)."""
