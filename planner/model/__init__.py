"""The model layer: architecture from config.json (parameters total and active, KV bytes per token, expert
layout) and quantization (bytes per weight, native compute formats). Imports only planner.errors and planner.units."""
