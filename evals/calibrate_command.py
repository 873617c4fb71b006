"""The `reasoner calibrate` command: fit a difficulty policy for `auto` from eval records."""

from __future__ import annotations

import argparse
import sys

from controllers.policy import learn_policy
from evals.cli import endpoints_from
from evals.records import read_records
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.remote_discovery import describe_remote_model
from reasoner.errors import InputError, SuiteError
from reasoner.models import EMBEDDED_ALIASES, EMBEDDED_MODEL


def run_calibrate_command(args: argparse.Namespace) -> int:
    """Read the records, learn the policy, write it, and say what each bin runs."""
    if args.min_accuracy is not None and not 0.0 <= args.min_accuracy <= 1.0:
        raise InputError(f"--min-accuracy must be between 0 and 1, got {args.min_accuracy}")
    records = []
    for path in args.records:
        records.extend(read_records(path).records)
    if not records:
        raise SuiteError(f"no records in {', '.join(args.records)}; run `reasoner eval --out FILE` first")
    model = EMBEDDED_MODEL if args.model is None or args.model in EMBEDDED_ALIASES else args.model
    endpoints = endpoints_from(args)
    if endpoints is not None and args.model is None:
        model, _ = describe_remote_model(RemoteBackend(endpoints))
    policy = learn_policy(records, model=model, force=args.force, min_accuracy=args.min_accuracy)
    try:
        policy.save(args.out)
    except OSError as exc:
        raise InputError(f"cannot write the policy to {args.out}: {exc.strerror or exc}") from None
    low, high = policy.thresholds
    lines = [f"wrote {args.out} from {len(records)} records: thresholds {low:.3f}, {high:.3f}"]
    for name, choice in policy.choices.items():
        accuracy = "n/a" if choice.accuracy is None else f"{choice.accuracy:.1%}"
        lines.append(f"  {name}: {choice.strategy} at {choice.budget} tokens (accuracy {accuracy})")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
