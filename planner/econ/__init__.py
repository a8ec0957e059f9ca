"""Economics: workload, fleet sizing, rental and owned costs, API costs, break-even, cost curves, sensitivity
and fine-tuning cost. Pure functions of numbers; builds on planner.perf for the replica it prices."""
