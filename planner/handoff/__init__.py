"""Hand-off: launch commands and deployment files (vLLM, SGLang, llama.cpp, TRT-LLM, SkyPilot, Kubernetes)."""
