"""Engines: the backend protocol (`base`), the in-process vLLM engine (`vllm_local`, its life in
`lifecycle`), vLLM OpenAI-compatible servers over HTTP (`remote`: one server or a fleet, with
`replica`, `routing`, `remote_discovery`, and `remote_pooling` for a PRM server;
`vllm_server` starts one locally) and the scripted backend for unit tests (`scripted`).
Foreign exceptions become the toolkit's here."""
