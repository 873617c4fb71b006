"""One router per endpoint group: chat completions, completions, models and health, metrics, and the
endpoints of a raw vLLM server this is not."""
