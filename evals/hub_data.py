"""Suite data from the Hugging Face hub, through `datasets`, where it is installed and online.

The rows are written once as JSONL into the default data folder, under the file name the
local reader looks for, so a fetched suite and a user's own file are read the same way and
the hub is asked only once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HubSource:
    """Where a suite lives on the hub: dataset id, config, the splits to join, the local file name."""

    dataset: str
    config: str | None
    splits: tuple[str, ...]
    file_name: str


HUB_SOURCES: dict[str, HubSource] = {
    "gsm8k": HubSource("openai/gsm8k", "main", ("test",), "gsm8k_test.jsonl"),
    "math500": HubSource("HuggingFaceH4/MATH-500", None, ("test",), "math500_test.jsonl"),
    "aime24": HubSource("HuggingFaceH4/aime_2024", None, ("train",), "aime24_test.jsonl"),
    "mbpp": HubSource(
        "google-research-datasets/mbpp", "full", ("train", "test", "validation", "prompt"), "mbpp_full.jsonl"
    ),
}


def fetch_suite(name: str, folder: Path) -> tuple[Path | None, str]:
    """Download suite `name` into `folder`; (the file, "") or (None, why it could not)."""
    source = HUB_SOURCES.get(name)
    if source is None:
        return None, f"{name!r} has no hub source"
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return None, "the hub is switched off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
    try:
        import datasets
    except ImportError:
        return None, "`datasets` is not installed (pip install datasets)"
    try:
        rows = [
            dict(row)
            for split in source.splits
            for row in datasets.load_dataset(source.dataset, source.config, split=split)
        ]
    except Exception as exc:  # noqa: BLE001 - any hub or network failure means "not available"
        return None, f"{source.dataset} could not be loaded from the hub ({type(exc).__name__})"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.file_name
    staging = target.with_suffix(".partial")
    with staging.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")
    staging.replace(target)
    return target, ""
