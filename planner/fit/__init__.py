"""Fitting: measured throughput rows, source-held-out validation, calibration of efficiency profiles and the
user profile store. Builds on planner.perf; scipy is imported only here, by calibration."""
