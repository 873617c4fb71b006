"""`reasoner serve --strategy-option`: the operator's strategy options, checked at start-up and applied to every
request of their strategy (route served over two scripted models with the operator's routing policy)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from cli.main import build_parser
from controllers.policy import Choice, Policy
from reasoner import Reasoner
from reasoner.errors import InputError
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend
from server import ServerConfig, create_app
from server.main import build_config
from server.operator_options import check_served_models, parse_strategy_options
from tests.cli.cli_support import run_cli
from tests.server.scripted_app import API_KEY

QUESTION = [{"role": "user", "content": "2 + 3?"}]
ANSWER = "step step\n\nFinal answer: 5"


def routing_policy_file(folder: Path, thresholds: tuple[float, float], hard_model: str = "large") -> str:
    """Easy and normal prompts to `direct` on small, hard ones to `direct` on `hard_model`.

    Under the `none` estimator (difficulty 0.5) thresholds (0.9, 0.95) bin every prompt easy, (0, 0) hard.
    """
    easy = Choice("direct", 256, accuracy=0.9, mean_tokens=60, problems=10, model="small")
    hard = Choice("direct", 256, accuracy=0.8, mean_tokens=60, problems=10, model=hard_model)
    choices = {"easy": easy, "normal": easy, "hard": hard}
    policy = Policy(thresholds, choices, {name: [choice] for name, choice in choices.items()}, source="hand")
    path = folder / "route.json"
    policy.save(path)
    return str(path)


def served_route(*flags: str) -> tuple[httpx.AsyncClient, ScriptedBackend, ScriptedBackend]:
    """A server of small and large (scripted) with the operator's `--strategy-option` flags applied."""
    small, large = ScriptedBackend(ANSWER), ScriptedBackend(ANSWER)
    models = {
        "small": ModelSpec(backend=small, profile="smollm2"),
        "large": ModelSpec(backend=large, profile="smollm2"),
    }
    reasoner = Reasoner(models=models)
    options = parse_strategy_options(flags)
    check_served_models(options, reasoner.models)
    config = ServerConfig(model_name="small", models=("small", "large"), api_key=API_KEY, strategy_options=options)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(reasoner, config)),
        base_url="http://server",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    return http, small, large


@pytest.mark.parametrize(("thresholds", "runs_on"), [((0.9, 0.95), "small"), ((0.0, 0.0), "large")])
async def test_served_route_runs_on_the_model_the_operators_policy_picks(
    tmp_path: Path, thresholds: tuple[float, float], runs_on: str
) -> None:
    http, small, large = served_route(f"route.policy_file={routing_policy_file(tmp_path, thresholds)}")
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url="http://server/v1", http_client=http, max_retries=0)
    response = await client.chat.completions.create(
        model="route@600", messages=QUESTION, extra_body={"strategy_options": {"estimator": "none"}}
    )
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert account["strategy"] == "route" and account["metrics"]["chosen_model"] == runs_on
    assert account["options"]["estimator"] == "none"
    assert "policy_file" not in account["options"], "the operator's policy path is not the client's to see"
    assert list(account["usage_by_model"]) == [runs_on]
    ran = {"small": len(small.requests), "large": len(large.requests)}
    assert ran[runs_on] == 1 and sum(ran.values()) == 1


async def test_without_the_operators_policy_served_route_is_still_refused() -> None:
    http, small, large = served_route()
    response = await http.post("/v1/chat/completions", json={"model": "route", "messages": QUESTION})
    assert response.status_code == 400 and "route needs policy_file" in response.json()["error"]["message"]
    assert not small.requests and not large.requests


async def test_a_client_naming_policy_file_gets_400_even_when_the_operator_set_one(tmp_path: Path) -> None:
    own = routing_policy_file(tmp_path, (0.0, 0.0))
    http, small, large = served_route(f"route.policy_file={own}")
    body = {"model": "route", "messages": QUESTION, "strategy_options": {"policy_file": own}}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "only the server's operator sets it" in response.json()["error"]["message"]
    assert not small.requests and not large.requests


@pytest.mark.parametrize(("estimator", "status"), [("pilot", 400), ("none", 200)])
async def test_a_client_option_conflicting_with_the_operators_is_refused_not_overridden(
    tmp_path: Path, estimator: str, status: int
) -> None:
    policy = routing_policy_file(tmp_path, (0.0, 0.0))
    http, small, large = served_route(f"route.policy_file={policy}", "route.estimator=none")
    body = {"model": "route@600", "messages": QUESTION, "strategy_options": {"estimator": estimator}}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    if status == 400:
        error = response.json()["error"]
        assert error["code"] == "operator_option_conflict" and error["param"] == "strategy_options"
        assert "estimator='pilot' conflicts with this server's route setting estimator='none'" in error["message"]
        assert not small.requests and not large.requests
    else:
        assert response.json()["reasoner"]["metrics"]["estimator"] == "none"


def test_the_serve_flags_reach_the_servers_config(tmp_path: Path) -> None:
    policy = routing_policy_file(tmp_path, (0.0, 0.0))
    flags = ["--strategy-option", f"route.policy_file={policy}", "--strategy-option", "self_consistency.n=8"]
    config = build_config(build_parser().parse_args(["serve", *flags]), "small", ("small", "large"))
    assert config.strategy_options == {"route": {"policy_file": policy}, "self_consistency": {"n": 8}}


def test_a_policy_routing_to_a_model_the_server_does_not_serve_is_refused_at_start_up(tmp_path: Path) -> None:
    options = parse_strategy_options([f"route.policy_file={routing_policy_file(tmp_path, (0.0, 0.0), 'huge')}"])
    with pytest.raises(InputError, match=r"--strategy-option for route: .*huge.*small, large"):
        check_served_models(options, ["small", "large"])
    check_served_models(options, ["small", "large", "huge"])


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--strategy-option", "route"], "--strategy-option 'route' is not STRATEGY.OPTION=VALUE"),
        (["--strategy-option", "policy_file=x.json"], "is not STRATEGY.OPTION=VALUE"),
        (["--strategy-option", "route.policy_file="], "gives route.policy_file no value"),
        (["--strategy-option", "nosuch.n=2"], "unknown strategy 'nosuch'"),
        (["--strategy-option", "self_consistency.nosuch=2"], "unknown option 'nosuch'"),
        (["--strategy-option", "self_consistency.n=0"], "option n=0"),
        (["--strategy-option", "route.policy_file={missing}"], "no policy file at"),
        (["--strategy-option", "route.policy_file={notes}"], "is not JSON"),
        (
            ["--strategy-option", "route.policy_file={policy}", "--strategy-option", "route.policy_file={policy}"],
            "sets route.policy_file twice",
        ),
        (["--strategy", "route"], "--strategy route cannot run on the operator's options (route needs policy_file"),
    ],
)
def test_bad_strategy_options_exit_2_in_one_line_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flags: list[str],
    fragment: str,
) -> None:
    def listening_socket(host: str, port: int) -> None:
        raise AssertionError("the start-up checks let it through: the server would listen and start its engine")

    monkeypatch.setattr("server.main.listening_socket", listening_socket)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a policy\n")
    paths = {
        "missing": str(tmp_path / "none.json"),
        "notes": str(notes),
        "policy": routing_policy_file(tmp_path, (0.0, 0.0)),
    }
    code, out, err = run_cli(capsys, "serve", *(flag.format(**paths) for flag in flags))
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1
