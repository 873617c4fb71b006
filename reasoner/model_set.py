"""Several models in one `Reasoner`: the names the user gives them and what each one runs on.

`Reasoner(models={"small": "...", "large": {"endpoint": "http://..."}})` names its models; each
entry is a `ModelSpec` (or its `model` as a string, or its fields as a dict): an in-process
engine, one or more endpoints (a fleet, under the fleet rules of `engines.remote`), or a given
backend, with its own profile and cost model. A name is what a request targets
(`Session.start(..., model="large")`), what the ledger counts by (`Usage.by_model`) and what
each trace node records; it is `[A-Za-z0-9][A-Za-z0-9._-]*`, so it reads the same in a
served model name (`server.selection`). A single-model Reasoner is a set of one, named after
its model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from reasoner.accelerators import Accelerator
from reasoner.cost import CostModel
from reasoner.engines.base import Backend, Tokenizer
from reasoner.errors import CostError, InputError, ModelError
from reasoner.models import find_local_model, resolve_model
from reasoner.profiles import ModelProfile, detect_profile, get_profile

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model of a set, with the single-model `Reasoner`'s own arguments (see `Reasoner`).

    `model`: a Hugging Face id or local folder (or, with `endpoint`, the served model's name);
    `endpoint`: a URL or a list of replicas instead of an in-process engine; `backend`: an engine
    of your own (e.g. `reasoner.testing.ScriptedBackend`); `profile` and `cost_model` as in `Reasoner`.
    """

    model: str | None = None
    endpoint: str | Sequence[str] | None = None
    api_key: str | None = None
    engine_args: dict[str, Any] | None = None
    backend: Backend | None = None
    profile: str | ModelProfile | None = None
    cost_model: CostModel | None = None


ModelEntry = str | ModelSpec | Mapping[str, Any]


@dataclass
class ModelTarget:
    """One built model of a Reasoner: its name, the model it runs, its engine, profile and cost model."""

    name: str
    model_name: str
    backend: Backend
    profile: ModelProfile
    cost_model: CostModel | None = None

    def tokenizer(self) -> Tokenizer:
        return self.backend.tokenizer()


def check_model_name(name: object) -> str:
    """`name` when it can name a model of a set, else a `ModelError` saying what a name may be."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise ModelError(
            f"model name {name!r} is not usable; a name is a letter or digit, then letters, digits, '.', '_' or '-'"
        )
    return name


def model_specs(models: Mapping[str, ModelEntry]) -> dict[str, ModelSpec]:
    """The specs of a `models=` argument, each name checked; an empty set is an `InputError`."""
    if not isinstance(models, Mapping):
        raise InputError(f"models must be a dict of name -> model, got {type(models).__name__}")
    if not models:
        raise InputError("models is empty; name at least one model, e.g. models={'small': 'HuggingFaceTB/...'}")
    return {check_model_name(name): as_spec(name, entry) for name, entry in models.items()}


def as_spec(name: str, entry: ModelEntry) -> ModelSpec:
    """A `ModelSpec` from a model string, a dict of its fields, or a spec."""
    if isinstance(entry, ModelSpec):
        return entry
    if isinstance(entry, str):
        return ModelSpec(model=entry)
    if isinstance(entry, Mapping):
        known = [spec_field.name for spec_field in fields(ModelSpec)]
        unknown = sorted(set(entry) - set(known))
        if unknown:
            raise InputError(f"model {name!r}: unknown field {', '.join(unknown)}; known: {', '.join(known)}")
        return ModelSpec(**entry)
    raise ModelError(f"model {name!r} must be a model id, a dict of its fields or a ModelSpec, got {entry!r}")


def build_model_set(
    single: ModelSpec,
    models: Mapping[str, ModelEntry] | None,
    default: str | None,
    accelerator: Accelerator,
    *,
    verbose: bool,
) -> tuple[dict[str, ModelTarget], str]:
    """A Reasoner's built models and its default model's name: `single` alone, or every entry of `models`.

    `single` holds the single-model arguments (`Reasoner(model=..., endpoint=..., ...)`); beside
    `models` none of them may be given, and `default` only names one of `models`.
    """
    if models is None:
        if default is not None:
            raise InputError("default= names one of models=; pass models= too, or drop default=")
        target = build_target(None, single, accelerator, verbose=verbose)
        return {target.name: target}, target.name
    given = [name for name, value in vars(single).items() if value is not None]
    if given:
        raise InputError(
            f"models= names each model with its own arguments; {', '.join(given)}= cannot be given beside "
            "it: put them in that model's entry (a dict or reasoner.ModelSpec)"
        )
    specs = model_specs(models)
    if default is not None and default not in specs:
        raise ModelError(f"default={default!r} is not one of the models: {', '.join(specs)}")
    built = {name: build_target(name, spec, accelerator, verbose=verbose) for name, spec in specs.items()}
    return built, default if default is not None else next(iter(specs))


def build_target(name: str | None, spec: ModelSpec, accelerator: Accelerator, *, verbose: bool) -> ModelTarget:
    """The engine, profile and cost model of one model; `name` defaults to the model's own name."""
    check_spec(spec)
    model_dir: Path | None = None
    model_type: str | None = None
    backend = spec.backend
    if spec.endpoint is not None:
        from reasoner.engines.remote import RemoteBackend
        from reasoner.engines.remote_discovery import describe_remote_model

        backend = RemoteBackend(spec.endpoint, model=spec.model, api_key=spec.api_key)
        model_name, model_type = describe_remote_model(backend)
        local = find_local_model(model_name)
        model_dir = local.local_dir if local is not None else None
    elif backend is None:
        from reasoner.engines.vllm_local import VLLMBackend

        resolved = resolve_model(spec.model)
        backend = VLLMBackend(resolved, spec.engine_args, verbose=verbose)
        model_name, model_type, model_dir = resolved.name, resolved.model_type, resolved.local_dir
    else:
        model_name = spec.model or name or "scripted"
    if isinstance(spec.profile, ModelProfile):
        profile = spec.profile
    elif isinstance(spec.profile, str):
        profile = get_profile(spec.profile)
    else:
        profile = detect_profile(model_name, model_type)
    cost_model = spec.cost_model or config_cost_model(model_dir, accelerator, model_name)
    return ModelTarget(name or model_name, model_name, backend, profile, cost_model)


def check_spec(spec: ModelSpec) -> None:
    """Refuse argument types and combinations that cannot work, before any engine starts."""
    if spec.model is not None and not isinstance(spec.model, str):
        raise ModelError(f"model must be a Hugging Face id or a local folder (a string), got {spec.model!r}")
    if spec.engine_args is not None and not isinstance(spec.engine_args, dict):
        raise InputError(f"engine_args must be a dict of vLLM engine arguments, got {type(spec.engine_args).__name__}")
    if spec.endpoint is not None and (spec.backend is not None or spec.engine_args):
        raise InputError("endpoint= runs on remote servers; it cannot be combined with backend= or engine_args=")
    if spec.cost_model is not None and not isinstance(spec.cost_model, CostModel):
        raise InputError(f"cost_model must be a reasoner.cost.CostModel, got {type(spec.cost_model).__name__}")


def config_cost_model(model_dir: Path | None, accelerator: Accelerator, name: str) -> CostModel | None:
    """The cost model of the model in `model_dir` (its config.json), or None without one."""
    if model_dir is None or not (model_dir / "config.json").is_file():
        return None
    try:
        return CostModel.from_config(model_dir, accelerator, name=name)
    except CostError:  # a model the engine runs but whose config the cost model cannot read runs unpriced
        return None
