"""Typed errors, grouped by what the caller can do about them.

Every error the toolkit raises is a `ReasonerError`. Foreign exceptions (vLLM's, the OS's)
are turned into these at the one boundary where they enter: the backend and model modules.
"""

from __future__ import annotations


class ReasonerError(Exception):
    """Base of every error the toolkit raises on purpose."""


class InputError(ReasonerError, ValueError):
    """The caller passed something unusable: fix the argument named in the message."""


class PromptError(InputError):
    """The prompt is empty, or does not fit the model's context window."""


class BudgetError(InputError):
    """The budget is malformed or too small for what was asked."""


class StrategyError(InputError):
    """Unknown strategy, or strategy options that do not validate."""


class ModelError(InputError):
    """The model cannot be found, read or provisioned."""


class CostError(InputError):
    """A model config, accelerator profile or price table that the cost model cannot use."""


class SuiteError(InputError):
    """An eval suite, its data file or its records are unusable."""


class EngineError(ReasonerError, RuntimeError):
    """The inference engine failed; the next call starts a fresh engine."""


class CapabilityError(ReasonerError, RuntimeError):
    """The backend lacks a capability the strategy needs (named in the message)."""


class SandboxUnavailableError(ReasonerError, RuntimeError):
    """The code jail cannot start here (the cause is named); opt in to another sandbox or fix the host."""


class UsageError(ReasonerError, RuntimeError):
    """A call that cannot work where it was made (the message names the one that does)."""
