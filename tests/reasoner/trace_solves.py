"""Scripted solves whose traces the trace page is tested on: model text carries a script payload."""

from __future__ import annotations

from reasoner import Solution
from reasoner.testing import ScriptedToken
from strategies.scoring import SELF_EVAL_QUESTION
from tests.scripted_runs import reasoner_with

PAYLOAD = (
    "<script>document.title='PWNED';document.documentElement.setAttribute('data-pwned','script')</script>"
    "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\"> & </pre>"
)
"""What a model might write; were it markup, it would set the title or a `data-pwned` attribute."""
STRATEGY_RUNS: dict[str, dict[str, object]] = {
    "tree_search": {"width": 3, "max_depth": 3},
    "particle_filter": {"particles": 3, "max_steps": 3},
    "parallel": {},
    "self_eval": {"policy": "best_of", "n": 4},
}


def respond(prompt: str) -> str | list[ScriptedToken]:
    """Two steps then an answer carrying `PAYLOAD`; a spawn block for `parallel`, whose children join."""
    if SELF_EVAL_QUESTION in prompt:
        return [ScriptedToken(" No", {" No": -0.2, " Yes": -1.7})]
    reply = prompt.rsplit("<|assistant|>", 1)[1]
    if "<join>" in reply:
        return f"Together 12 {PAYLOAD}.\nFinal answer: 12"
    if "split it" in prompt and "<spawn>" not in reply and "Step" not in reply:
        return "Split.\n<spawn>\n- add 2 and 3\n- add 3 and 4\n</spawn>"
    done = reply.count("Step ")
    if done >= 2:
        return f"Final answer: 7 {PAYLOAD}"
    return f"Step {done + 1}: 3 + 4 = 7 {PAYLOAD}\n\n"


def scripted_solve(strategy: str) -> Solution:
    prompt = "split it: 2 + 3 + 3 + 4?" if strategy == "parallel" else "3 + 4?"
    return reasoner_with(respond).solve(prompt, budget=2000, strategy=strategy, **STRATEGY_RUNS[strategy])
