"""The `reasoner calibrate` command: fit `auto`'s policy on the configured estimator's scores.

The records say which configurations solved which problems; the problems' prompts come back
from their suite (procedural problems are regenerated from their ids, data suites are read
from `--suite-path` or the packaged data), each with its suite's answer format. The estimator
then runs on every prompt, in that format, on the model's engine (`controllers.calibration`),
and the policy is learned on its scores.

With `--model NAME=MODEL` given for several models, the policy routes (`route`): records tell
the models apart by their `model` field (a record of MODEL, or of a served model's name, counts
as NAME's), every configuration is measured per model in cost, and the estimator runs on the
first model, the default one a `Reasoner` of those names solves on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from cli.arguments import endpoints_from, model_set_from
from controllers.calibration import FOLDS, Calibration, acalibrate, problem_key
from controllers.policy import config_label, policy_from_json
from controllers.policy_learning import check_records
from evals import procedural
from evals.records import read_records
from evals.saturation import DEFAULT_MIN_GAIN_PER_1K_TOKENS, check_threshold, saturation_budgets
from evals.suites import Problem, load_suite
from reasoner import Reasoner
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.remote_discovery import describe_remote_model
from reasoner.errors import InputError, SuiteError
from reasoner.model_set import ModelSpec
from reasoner.models import EMBEDDED_ALIASES, EMBEDDED_MODEL
from reasoner.output_files import open_existing_output

MAX_POLICY_BYTES = 16 * 2**20
"""A larger file is no policy `calibrate` wrote; it is not read whole."""


def run_calibrate_command(args: argparse.Namespace) -> int:
    """Read the records, estimate their problems, learn the policy, write it, and say what each bin runs."""
    if args.min_accuracy is not None and not 0.0 <= args.min_accuracy <= 1.0:
        raise InputError(f"--min-accuracy must be between 0 and 1, got {args.min_accuracy}")
    threshold = DEFAULT_MIN_GAIN_PER_1K_TOKENS if args.saturation_threshold is None else args.saturation_threshold
    check_threshold(threshold)
    check_policy_out(args.out)
    records = []
    for path in args.records:
        records.extend(read_records(path).records)
    if not records:
        raise SuiteError(f"no records in {', '.join(args.records)}; run `reasoner eval --out FILE` first")
    endpoints = endpoints_from(args)
    models = model_set_from(args.model, {})
    names = None
    if models is not None:
        if endpoints is not None:
            raise InputError("--endpoint runs one model; with several, give each its URL: --model NAME=URL")
        names = record_model_names(models)
        model = next(iter(models))
    else:
        given = args.model[0] if args.model else None
        model = EMBEDDED_MODEL if given is None or given in EMBEDDED_ALIASES else given
        if endpoints is not None and given is None:
            model, _ = describe_remote_model(RemoteBackend(endpoints))
    check_records(records, model, force=args.force, names=names)
    problems = calibration_problems(records, args.suite_path)
    result = asyncio.run(_calibrate(args, records, problems, model, models, names))
    result.policy.cap_at_saturation(saturation_caps(records, threshold, names))
    check_policy_out(args.out)  # again: the estimator ran for a while
    try:
        result.policy.save(args.out)
    except OSError as exc:
        raise InputError(f"cannot write the policy to {args.out}: {exc.strerror or exc}") from None
    sys.stdout.write("\n".join(summary_lines(result, args.out, len(records))) + "\n")
    return 0


def saturation_caps(
    records: Sequence[dict[str, Any]], threshold: float, names: dict[str, str] | None = None
) -> dict[str, int]:
    """Per configuration (`config_label`), the budget past which it saturates on these records (`evals.saturation`).

    With `names` (a routing policy: record model -> model name) each model's records are fitted apart.
    """

    def label(record: dict[str, Any]) -> str:
        model = names[str(record["model"])] if names is not None else None
        return config_label(record["strategy"], record.get("options") or {}, model)

    return saturation_budgets(records, label, threshold)


def record_model_names(models: dict[str, ModelSpec]) -> dict[str, str]:
    """What a record's `model` field says for each named model -> its name; the first entry is the default's.

    A record counts as NAME's when its model is NAME, the MODEL given for it (an embedded alias
    as the embedded model's name), or, for NAME=URL, the model the server serves.
    """
    names: dict[str, str] = {}
    for name, spec in models.items():
        if spec.endpoint is not None:
            sources = [describe_remote_model(RemoteBackend(spec.endpoint))[0]]
        else:
            sources = [str(spec.model)] + ([EMBEDDED_MODEL] if spec.model in EMBEDDED_ALIASES else [])
        for source in (name, *sources):
            names.setdefault(source, name)
    return names


def check_policy_out(out: str) -> None:
    """Refuse an `--out` the policy may not replace: anything but a missing path, an empty file or a policy.

    A folder, a FIFO or device, and a file that is not a policy (notes, settings) are refused
    before any estimator work, and left unchanged.
    """
    existing = open_existing_output(
        out, f"cannot write the policy to {out}", f"--out {out} is not a regular file; pass a policy file path (JSON)"
    )
    if existing is None:
        return
    with existing:
        content = existing.read(MAX_POLICY_BYTES + 1)
    if not content:
        return
    try:
        policy_from_json(json.loads(content.decode("utf-8")), out)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise InputError(
            f"--out {out} is a file that is not a policy; it was left unchanged, pass a new --out path"
        ) from None


async def _calibrate(
    args: argparse.Namespace,
    records: list[dict[str, Any]],
    problems: dict[str, tuple[str, str]],
    model: str,
    models: dict[str, ModelSpec] | None,
    names: dict[str, str] | None,
) -> Calibration:
    if models is not None:  # the estimator runs on the default model only
        reasoner = Reasoner(models={model: models[model]})
    else:
        reasoner = Reasoner(args.model[0] if args.model else None, endpoint=endpoints_from(args))
    async with reasoner as running:
        return await acalibrate(
            running,
            records,
            {key: prompt for key, (prompt, _) in problems.items()},
            args.estimator,
            representation=args.representation,
            model=model,
            force=args.force,
            min_accuracy=args.min_accuracy,
            answer_formats={key: answer_format for key, (_, answer_format) in problems.items()},
            names=names,
        )


def problem_prompts(records: Sequence[dict[str, Any]], suite_path: str | None = None) -> dict[str, str]:
    """The prompt of every problem in the records, keyed `suite|problem_id`."""
    return {key: prompt for key, (prompt, _) in calibration_problems(records, suite_path).items()}


def calibration_problems(
    records: Sequence[dict[str, Any]], suite_path: str | None = None
) -> dict[str, tuple[str, str]]:
    """Prompt and answer format (its suite's: `math`, `code`) of every problem in the records, by `suite|problem_id`."""
    problems: dict[str, tuple[str, str]] = {}
    data_suites: dict[str, dict[str, Problem]] = {}
    for record in records:
        key, suite, problem_id = problem_key(record), str(record.get("suite", "")), str(record["problem_id"])
        if key in problems:
            continue
        if suite in procedural.GENERATORS:
            problems[key] = (procedural_prompt(suite, problem_id), "math")
            continue
        if suite not in data_suites:
            data_suites[suite] = {problem.id: problem for problem in load_suite(suite, path=suite_path)}
        if problem_id not in data_suites[suite]:
            raise SuiteError(f"problem {problem_id!r} is not in suite {suite!r}; pass the --suite-path it came from")
        problem = data_suites[suite][problem_id]
        problems[key] = (problem.prompt, problem.answer_format)
    return problems


def procedural_prompt(suite: str, problem_id: str) -> str:
    """Regenerate a procedural problem from its id `<suite>-s<seed>-d<difficulty>-<index>`."""
    parts = problem_id.removeprefix(f"{suite}-").split("-")
    try:
        seed, difficulty, index = int(parts[0].removeprefix("s")), int(parts[1].removeprefix("d")), int(parts[2])
    except (IndexError, ValueError):
        raise SuiteError(
            f"problem id {problem_id!r} is not an id of suite {suite!r} (<suite>-s<seed>-d<level>-<index>)"
        ) from None
    if len(parts) != 3 or not 1 <= difficulty <= procedural.MAX_DIFFICULTY or index < 0:
        raise SuiteError(
            f"problem id {problem_id!r} is not an id of suite {suite!r} (<suite>-s<seed>-d<level>-<index>)"
        )
    return procedural.GENERATORS[suite](index, seed, difficulty).prompt


def summary_lines(result: Calibration, out: str, record_count: int) -> list[str]:
    """What was learned, in a few lines: thresholds, the estimator's checks, each bin's choice."""
    policy = result.policy
    low, high = policy.thresholds
    estimator = policy.estimator.name if policy.estimator else "?"
    lines = [
        f"wrote {out} from {record_count} records of {result.problems} problems: estimator {estimator} "
        f"({result.estimator_tokens} tokens), thresholds {low:.3f}, {high:.3f}"
    ]
    if result.entropy is not None:
        cells = ", ".join(f"entropy {mean:.2f}: difficulty {level:.2f}" for mean, level in result.entropy.tertiles)
        lines.append(
            f"  entropy vs difficulty by tertile ({cells}): {result.entropy.shape}; "
            f"entropy weight {result.entropy.entropy_weight:.1f}"
        )
    if result.probe_accuracy is not None:
        lines.append(
            f"  probe accuracy on the calibration problems, each scored by a probe trained without it "
            f"({FOLDS}-fold): {result.probe_accuracy:.1%}"
        )
    for name, choice in policy.choices.items():
        accuracy = "n/a" if choice.accuracy is None else f"{choice.accuracy:.1%}"
        on = f" on {choice.model}" if choice.model is not None else ""
        cost = "" if choice.mean_cost is None else f", mean cost {choice.mean_cost:.3g} eFLOPs"
        lines.append(f"  {name}: {choice.strategy}{on} at {choice.budget} tokens (accuracy {accuracy}{cost})")
    return lines
