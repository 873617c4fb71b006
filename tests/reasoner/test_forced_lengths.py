"""`forced_lengths`: the same engine, every request past its end-of-sequence token."""

from __future__ import annotations

import numpy as np

from reasoner import Reasoner
from reasoner.engines.base import SamplingSpec, TokensPrompt
from reasoner.engines.remote_protocol import completion_payload
from reasoner.testing import ScriptedBackend, forced_lengths


def test_the_sibling_asks_every_request_to_ignore_eos_and_the_original_does_not() -> None:
    backend = ScriptedBackend("Final answer: 5")
    with Reasoner(backend=backend, profile="smollm2") as reasoner:
        forced_lengths(reasoner).solve("2 + 3?", budget=16, strategy="self_consistency", n=2)
        reasoner.solve("2 + 3?", budget=16)
    forced, plain = backend.requests[:-1], backend.requests[-1]
    assert len(forced) == 2 and all(record.sampling.ignore_eos for record in forced)
    assert not plain.sampling.ignore_eos


def test_the_sibling_runs_on_the_loop_that_owns_the_engine() -> None:
    with Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2") as reasoner:
        sibling = forced_lengths(reasoner)  # starts the original: its loop owns the engine
        assert sibling._loop is reasoner._loop is not None
        assert sibling.solve("2 + 3?", budget=8).answer == "5"


def test_a_remote_request_carries_ignore_eos() -> None:
    prompt = TokensPrompt((1, 2))
    forced, _ = completion_payload("m", prompt, SamplingSpec(max_tokens=4, ignore_eos=True))
    plain, _ = completion_payload("m", prompt, SamplingSpec(max_tokens=4))
    assert (forced["ignore_eos"], plain["ignore_eos"]) == (True, False)
    assert np.array_equal(forced["prompt"], plain["prompt"])
