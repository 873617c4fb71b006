"""One router per endpoint group: chat completions, completions, models and health, metrics."""
