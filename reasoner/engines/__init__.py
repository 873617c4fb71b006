"""Engines: the backend protocol (`base`), the in-process vLLM engine (`vllm_local`) and the
scripted backend for unit tests (`scripted`). Foreign exceptions become the toolkit's here."""
