from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Budget, Reasoner, Solution, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend
from strategies.parallel import CHILD_REQUEST, Parallel, parse_spawn
from strategies.spawn_syntax import parse_result
from tests.scripted_runs import reasoner_with, records

ROOT = "Let me split it.\n<spawn>\n- add 2 and 3\n- add 3 and 4\n</spawn> never read"


def scripted(root: str = ROOT, child: str = "it is {n}", final: str = "Together 12.\nFinal answer: 12"):
    """Root, children (answer 5 or 7 by subtask) and the continuation after the join, told apart by prompt."""

    def respond(prompt: str) -> str:
        last_user_turn = prompt.rsplit("<|user|>", 1)[1]
        if "<join>" in prompt.rsplit("<|assistant|>", 1)[1]:
            return final
        if last_user_turn.startswith(" " + CHILD_REQUEST.split("{task}")[0]):
            return child.format(n=5 if "add 2 and 3" in last_user_turn else 7)
        return root

    return respond


def edges(solution: object, kind: str) -> list[tuple[int, int]]:
    graph = solution.trace  # type: ignore[attr-defined]
    return [(source, target) for source, target, attrs in graph.edges(data=True) if attrs["kind"] == kind]


def test_parse_reads_bulleted_and_numbered_tasks() -> None:
    block = parse_spawn("before <spawn>\n- one\n2) two\n\n* three\n</spawn> after")
    assert block is not None
    assert block.tasks == ("one", "two", "three")
    assert "before <spawn>\n- one\n2) two\n\n* three\n</spawn> after"[block.start : block.end].endswith("</spawn>")


def test_parse_reads_apr_spawn_calls() -> None:
    block = parse_spawn("ok spawn(msgs=['try (4, 5)', \"try 6\"]) rest")
    assert block is not None
    assert block.tasks == ("try (4, 5)", "try 6")


@pytest.mark.parametrize("text", ["<spawn>\n- one\n", "<spawn>\n\n</spawn>", "spawn(['a'", "spawn()"])
def test_unclosed_or_empty_spawns_are_malformed(text: str) -> None:
    block = parse_spawn(text)
    assert block is not None
    assert block.malformed


def test_repeated_tasks_are_kept_once() -> None:
    block = parse_spawn("<spawn>\n- 3 + 4\n- 5 + 6\n- 3 + 4\n</spawn>")
    assert block is not None
    assert block.tasks == ("3 + 4", "5 + 6")


def test_text_without_spawn_parses_to_none() -> None:
    assert parse_spawn("just reasoning, Final answer: 4") is None


def test_shared_children_extend_the_parents_token_ids() -> None:
    reasoner = reasoner_with(scripted())
    solution = reasoner.solve("q", budget=400, strategy="parallel", context="shared")
    root, first_child, second_child, final = records(reasoner)
    parent_ids = (*root.prompt_token_ids, *reasoner.backend.tokenizer().encode(root.output_text))
    for child in (first_child, second_child):
        assert child.prompt_token_ids[: len(parent_ids)] == parent_ids
        assert child.cached_prompt_tokens >= len(root.prompt_token_ids)
    assert final.prompt_token_ids[: len(parent_ids)] == parent_ids
    assert solution.metrics["children"] == 2


def test_shared_join_brings_every_childs_whole_reply_back_and_the_parent_answers() -> None:
    reasoner = reasoner_with(scripted(child="Adding.\n\nit is {n}"))
    solution = reasoner.solve("q", budget=400, strategy="parallel", context="shared")
    final_prompt = records(reasoner)[-1].prompt_text
    assert "<join>\n- add 2 and 3: Adding. it is 5\n- add 3 and 4: Adding. it is 7\n</join>" in final_prompt
    assert solution.answer == "12"
    assert "never read" not in solution.text


def test_trace_shows_spawn_and_join_edges() -> None:
    solution = reasoner_with(scripted()).solve("q", budget=400, strategy="parallel")
    spawns, joins = edges(solution, "spawn"), edges(solution, "join")
    assert len(spawns) == 2 and len(joins) == 2
    assert {target for _, target in spawns} == {source for source, _ in joins}
    assert len({target for _, target in joins}) == 1


def test_children_decode_at_the_same_time() -> None:
    reasoner = reasoner_with(scripted(child="a b c d e f g h {n}"), delay_s=0.002)
    solution = reasoner.solve("q", budget=400, strategy="parallel")
    assert float(solution.metrics["children_overlap_s"] or 0) > 0


def test_serial_children_run_one_after_another() -> None:
    reasoner = reasoner_with(scripted(child="a b c d e f g h {n}"), delay_s=0.002)
    solution = reasoner.solve("q", budget=400, strategy="parallel", children="serial")
    assert solution.metrics["children_overlap_s"] == 0
    assert solution.metrics["children"] == 2


def test_malformed_spawn_falls_back_to_serial_reasoning_and_is_counted() -> None:
    reasoner = reasoner_with(scripted(root="Thinking.\n<spawn>\n</spawn>"))
    solution = reasoner.solve("q", budget=400, strategy="parallel")
    assert solution.metrics["spawn_parse_failures"] == 1
    assert solution.metrics["children"] == 0
    assert not edges(solution, "spawn")
    assert "<spawn>" not in records(reasoner)[-1].prompt_text.rsplit("<|assistant|>", 1)[1]


def test_apr_syntax_spawns_children_too() -> None:
    reasoner = reasoner_with(scripted(root='Split: spawn("add 2 and 3", "add 3 and 4") and wait'))
    solution = reasoner.solve("q", budget=400, strategy="parallel")
    assert solution.metrics["children"] == 2
    assert solution.answer == "12"


def test_tasks_beyond_the_fanout_are_dropped_and_counted() -> None:
    root = "<spawn>\n- add 2 and 3\n- b\n- c\n- d\n- e\n</spawn>"
    solution = reasoner_with(scripted(root=root)).solve("q", budget=400, strategy="parallel", max_fanout=2)
    assert solution.metrics["children"] == 2
    assert solution.metrics["tasks_dropped"] == 3


def test_children_spawn_only_while_depth_allows() -> None:
    child = "<spawn>\n- add 2 and 3\n</spawn>"
    shallow = reasoner_with(scripted(child=child)).solve("q", budget=600, strategy="parallel", max_depth=1)
    deep = reasoner_with(scripted(child=child)).solve("q", budget=600, strategy="parallel", max_depth=2)
    assert shallow.metrics["depth_reached"] == 1
    assert deep.metrics["depth_reached"] == 2
    assert deep.metrics["spawns"] == 3


def test_children_cut_by_their_share_are_marked_in_the_join() -> None:
    reasoner = reasoner_with(scripted(child=" ".join(["word"] * 50) + " {n}"))
    solution = reasoner.solve("q", budget=200, strategy="parallel", child_tokens=10, context="shared")
    assert solution.metrics["children_cut"] == 2
    assert "(cut off)" in records(reasoner)[-1].prompt_text
    assert solution.usage.generated_tokens <= 200


def test_no_tokens_left_for_children_falls_back_to_serial() -> None:
    root = " ".join(["word"] * 18) + "\n<spawn>\n- a\n- b\n- c\n</spawn>"  # 26 of the 28 tokens before the reserve
    solution = reasoner_with(scripted(root=root)).solve("q", budget=40, strategy="parallel", answer_tokens=12)
    assert solution.metrics["spawns_over_budget"] == 1
    assert solution.metrics["children"] == 0
    assert solution.usage.generated_tokens <= 40


def test_always_mode_starts_the_response_inside_a_spawn_block() -> None:
    reasoner = reasoner_with(scripted(root="add 2 and 3\n- add 3 and 4\n</spawn>"))
    solution = reasoner.solve("q", budget=400, strategy="parallel", spawn="always")
    assert records(reasoner)[0].prompt_text.endswith("<spawn>\n- ")
    assert solution.metrics["children"] == 2


def test_always_mode_closes_the_task_list_at_a_blank_line() -> None:
    reasoner = reasoner_with(scripted(root="add 2 and 3\n- add 3 and 4\n\nMore text that is not a task"))
    solution = reasoner.solve("q", budget=400, strategy="parallel", spawn="always")
    assert solution.metrics["children"] == 2
    assert solution.metrics["spawn_parse_failures"] == 0


def test_always_mode_drops_a_task_line_cut_by_the_list_cap() -> None:
    root = "add 2 and 3\n- add 3 and 4\n- " + "very " * 200 + "long"
    solution = reasoner_with(scripted(root=root)).solve("q", budget=600, strategy="parallel", spawn="always")
    assert solution.metrics["children"] == 2


def test_shared_children_ask_their_task_as_a_new_user_turn() -> None:
    reasoner = reasoner_with(scripted())
    reasoner.solve("q", budget=400, strategy="parallel", context="shared")
    child = records(reasoner)[1].prompt_text
    assert child.endswith("<|user|> " + CHILD_REQUEST.format(task="add 2 and 3") + "\n<|assistant|>")


def test_isolated_children_start_from_the_system_prompt_and_their_spawn_message() -> None:
    reasoner = reasoner_with(scripted())
    reasoner.solve("What is 2 + 3 + 3 + 4?", budget=400, strategy="parallel")
    child = records(reasoner)[1].prompt_text
    expected = get_profile("smollm2").build_prompt(
        reasoner.backend.tokenizer(), CHILD_REQUEST.format(task="add 2 and 3"), thinking=False
    )
    assert child == expected
    assert "What is 2 + 3" not in child and "Let me split it" not in child


def test_isolated_join_returns_only_each_childs_result() -> None:
    reasoner = reasoner_with(scripted(child="First I line up the digits and carry.\n\nFinal answer: {n}"))
    solution = reasoner.solve("q", budget=400, strategy="parallel")
    final_prompt = records(reasoner)[-1].prompt_text
    assert "<join>\n- add 2 and 3: 5\n- add 3 and 4: 7\n</join>" in final_prompt
    assert "carry" not in final_prompt
    assert solution.answer == "12"


def test_an_isolated_result_without_an_answer_is_its_last_paragraph_capped() -> None:
    child = "Thinking about it.\n\n" + " ".join(["more"] * 80)
    reasoner = reasoner_with(scripted(child=child))
    reasoner.solve("q", budget=600, strategy="parallel", result_tokens=5)
    final_prompt = records(reasoner)[-1].prompt_text
    assert "- add 2 and 3: more more more more more ...\n" in final_prompt
    assert "Thinking about it" not in final_prompt


def test_an_isolated_child_joins_with_the_message_it_wrote_after_its_result_marker() -> None:
    # The child's answer line says 5 (or 7); its Result paragraph is what the parent must see.
    child = "Adding.\n\nFinal answer: {n}\n\n**Result:** the sum is {n}, checked twice.\n\nA last remark."
    reasoner = reasoner_with(scripted(child=child))
    solution = reasoner.solve("q", budget=600, strategy="parallel")
    final_prompt = records(reasoner)[-1].prompt_text
    assert "- add 2 and 3: the sum is 5, checked twice.\n- add 3 and 4: the sum is 7, checked twice.\n" in final_prompt
    assert "remark" not in final_prompt
    assert solution.metrics["results_written"] == 2


def test_an_isolated_child_may_return_its_message_with_an_apr_join_call() -> None:
    reasoner = reasoner_with(scripted(child='Work.\n\nFinal answer: {n}\njoin("found {n}")'))
    solution = reasoner.solve("q", budget=600, strategy="parallel")
    assert "- add 2 and 3: found 5\n- add 3 and 4: found 7\n" in records(reasoner)[-1].prompt_text
    assert solution.metrics["results_written"] == 2


def test_children_are_asked_to_end_with_a_result_line() -> None:
    reasoner = reasoner_with(scripted())
    reasoner.solve("q", budget=400, strategy="parallel")
    assert "add 2 and 3\nEnd with a line that starts with 'Result:'" in records(reasoner)[1].prompt_text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Work.\n\nResult: 42 apples\n\nmore text", "42 apples"),
        ("x\n**Result:** 7", "7"),
        ("a\nResult: 1\nb\nResult: 2 and 3\nstill the paragraph", "2 and 3\nstill the paragraph"),
        ('Result: 1\njoin("two", "three")', "two three"),
        ("Result: 1\nthen join('x') and Result: not at a line start", "x"),
        ("The result: 5", None),
        ("Result:\n\nthe sum is 5\n\nbye", "the sum is 5"),
        ("Work.\nResult:   \n", None),
        ("<join>\n- a: 5\n</join>", None),
    ],
)
def test_parse_result_reads_the_last_result_paragraph_or_join_call(text: str, message: str | None) -> None:
    assert parse_result(text) == message


def test_result_tokens_apply_only_to_isolated_children() -> None:
    reasoner = reasoner_with(scripted())
    with pytest.raises(StrategyError, match="option 'result_tokens' applies only with context='isolated'"):
        reasoner.solve("q", budget=400, strategy="parallel", context="shared", result_tokens=10)
    assert records(reasoner) == []


def test_isolation_keeps_the_parents_context_smaller_than_sharing() -> None:
    child = " ".join(["step"] * 40) + "\n\nFinal answer: {n}"
    isolated = reasoner_with(scripted(child=child)).solve("q", budget=600, strategy="parallel")
    shared = reasoner_with(scripted(child=child)).solve("q", budget=600, strategy="parallel", context="shared")
    assert isolated.answer == shared.answer == "12"
    isolated_parent, shared_parent = (int(s.metrics["parent_context_tokens"] or 0) for s in (isolated, shared))
    assert 0 < isolated_parent < shared_parent - 60
    isolated_child, shared_child = (int(s.metrics["child_context_tokens_max"] or 0) for s in (isolated, shared))
    assert isolated_child < shared_child


@pytest.mark.parametrize(("option", "value"), [("max_fanout", 0), ("max_depth", 0), ("answer_tokens", 0)])
def test_limits_below_one_are_strategy_errors(option: str, value: int) -> None:
    with pytest.raises(StrategyError, match=f"option {option}={value}"):
        reasoner_with(scripted()).solve("q", budget=400, strategy="parallel", **{option: value})


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(8, 300),
    fanout=st.integers(1, 5),
    depth=st.integers(1, 3),
    answer_tokens=st.integers(1, 80),
    child_words=st.integers(0, 60),
    root_words=st.integers(0, 60),
)
def test_totals_never_exceed_the_budget(
    tokens: int, fanout: int, depth: int, answer_tokens: int, child_words: int, root_words: int
) -> None:
    root = "w " * root_words + "<spawn>\n- add 2 and 3\n- b\n- c\n</spawn>"
    child = "w " * child_words + "<spawn>\n- add 3 and 4\n- d\n</spawn> {n}"

    async def scenario() -> Session:
        backend = ScriptedBackend(scripted(root=root, child=child), delay_s=0.0002)
        await backend.start()
        session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))
        options = Parallel.Options(max_fanout=fanout, max_depth=depth, answer_tokens=answer_tokens)
        await Parallel(options).run(session, "q")
        return session

    session = asyncio.run(scenario())
    assert session.ledger.generated_tokens <= tokens
    assert session.ledger.reserved_tokens == 0


@pytest.mark.engine
def test_spawned_children_decode_concurrently_on_the_engine(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve(
        "List two facts about the number 12, then say which is larger: 12 or 21.",
        budget=300,
        strategy="parallel",
        spawn="always",
        max_fanout=3,
        child_tokens=32,
    )
    assert int(solution.metrics["children"] or 0) >= 2
    children = [attrs for _, attrs in solution.trace.nodes(data=True) if attrs["kind"] == "child"]
    assert max(child["started_at"] for child in children) < min(child["finished_at"] for child in children)
    assert solution.usage.cached_prompt_tokens > 0
    assert edges(solution, "spawn") and edges(solution, "join")


@pytest.mark.engine
def test_isolated_children_on_the_engine_hold_only_their_task(engine_reasoner: Reasoner) -> None:
    question = "List two facts about the number 12, then say which is larger: 12 or 21."

    async def both() -> list[Solution]:
        # Together: one run of decode steps on the CPU engine for both contexts, not one each.
        return await asyncio.gather(
            *(
                engine_reasoner.asolve(
                    question, 300, "parallel", spawn="always", max_fanout=2, child_tokens=32, context=context
                )
                for context in ("isolated", "shared")
            )
        )

    runs = dict(zip(("isolated", "shared"), asyncio.run(both()), strict=True))
    contexts = {name: int(run.metrics["child_context_tokens_max"] or 0) for name, run in runs.items()}
    assert all(int(run.metrics["children"] or 0) >= 1 for run in runs.values())
    assert 0 < contexts["isolated"] < contexts["shared"]
    assert int(runs["isolated"].metrics["parent_context_tokens"] or 0) > 0
