"""Server overhead: the same prompts through `reasoner serve` (openai client) and through `Reasoner.asolve`.

One engine for both: the server's app runs under uvicorn in this process on the same
`Reasoner`, and the openai client sends every prompt at once over HTTP on 127.0.0.1; the
in-process path gathers `asolve` for the same prompts. The client shares this process's
event loop and CPU with the server, so the figure includes the client's own JSON work (a
worst case). The prefix cache is reset before every run; each repeat runs both paths, and
which goes first alternates from repeat to repeat (`alternation.py`). Printed: each path's
tokens/s over the repeats and the per-repeat ratios, last the tokens/s verdict ("within noise"
when the repeats disagree in direction). Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import openai
import uvicorn
from alternation import per_side, ratios, repeat_count, schedule, spread, verdict
from rich.console import Console
from rich.table import Table

from reasoner import Reasoner
from server import ServerConfig, create_app

QUESTIONS = [f"What is {a} + {b}? Explain briefly." for a in range(3, 67, 8) for b in range(5, 45, 5)]
IN_PROCESS, SERVED = "in-process asolve", "reasoner serve (HTTP)"


async def in_process(reasoner: Reasoner, strategy: str, budget: int) -> tuple[int, float]:
    await reasoner.backend.engine.reset_prefix_cache()  # type: ignore[attr-defined]
    started = time.perf_counter()
    solutions = await asyncio.gather(*(reasoner.asolve(question, budget, strategy) for question in QUESTIONS))
    return sum(solution.usage.generated_tokens for solution in solutions), time.perf_counter() - started


async def through_server(
    reasoner: Reasoner, client: openai.AsyncOpenAI, strategy: str, budget: int
) -> tuple[int, float]:
    await reasoner.backend.engine.reset_prefix_cache()  # type: ignore[attr-defined]
    started = time.perf_counter()
    responses = await asyncio.gather(
        *(
            client.chat.completions.create(model=f"{strategy}@{budget}", messages=[{"role": "user", "content": q}])
            for q in QUESTIONS
        )
    )
    return sum(
        response.usage.completion_tokens for response in responses if response.usage
    ), time.perf_counter() - started


async def measure(reasoner: Reasoner, repeats: int, strategy: str, budget: int) -> list[tuple[int, str, int, float]]:
    """(repeat, path, generated tokens, wall s) of every measured run, in the order they ran."""
    await reasoner.astart()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = ServerConfig(model_name=reasoner.model_name, max_concurrency=len(QUESTIONS), max_queue=0)
    server = uvicorn.Server(uvicorn.Config(create_app(reasoner, config), log_level="warning", access_log=False))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    client = openai.AsyncOpenAI(api_key="none", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=600)
    try:
        await in_process(reasoner, strategy, 8)  # warm-up, not counted
        await through_server(reasoner, client, strategy, 8)
        runs = {
            IN_PROCESS: lambda: in_process(reasoner, strategy, budget),
            SERVED: lambda: through_server(reasoner, client, strategy, budget),
        }
        return [(repeat, path, *await runs[path]()) for repeat, path in schedule(list(runs), repeats)]
    finally:
        await client.close()
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=repeat_count, default=4)
    parser.add_argument("--budget", type=int, default=128)
    parser.add_argument("--strategy", default="direct")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    reasoner = Reasoner(args.model, max_concurrency=len(QUESTIONS))
    try:
        rows = asyncio.run(measure(reasoner, args.repeats, args.strategy, args.budget))
    finally:
        reasoner.close()
    table = Table(title=f"{len(QUESTIONS)} prompts at once, {args.strategy}@{args.budget}, one engine")
    for column in ("repeat", "run", "requests", "generated tokens", "wall s", "requests/s", "tokens/s"):
        table.add_column(column, justify="right")
    count = len(QUESTIONS)
    for repeat, path, tokens, seconds in rows:
        table.add_row(
            str(repeat + 1),
            path,
            str(count),
            str(tokens),
            f"{seconds:.2f}",
            f"{count / seconds:.2f}",
            f"{tokens / seconds:.1f}",
        )
    console = Console(width=120)
    console.print(table)
    token_rates = per_side((path, tokens / seconds) for _, path, tokens, seconds in rows)
    request_rates = per_side((path, count / seconds) for _, path, _, seconds in rows)
    for path, rates in token_rates.items():
        console.print(f"{path} tokens/s over {len(rates)} repeats: {spread(rates)}")
    console.print(verdict("server / in-process requests/s", ratios(request_rates[SERVED], request_rates[IN_PROCESS])))
    console.print(verdict("server / in-process tokens/s", ratios(token_rates[SERVED], token_rates[IN_PROCESS])))


if __name__ == "__main__":
    main()
