"""Server overhead: the same prompts through `reasoner serve` (openai client) and through `Reasoner.asolve`.

One engine for both: the server's app runs under uvicorn in this process on the same
`Reasoner`, and the openai client sends every prompt at once over HTTP on 127.0.0.1; the
in-process path gathers `asolve` for the same prompts. The client shares this process's
event loop and CPU with the server, so the figure includes the client's own JSON work (a
worst case). The prefix cache is reset before every run; runs alternate to spread machine
noise and the median ratio of generated tokens/s is printed last. Target: >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time

import openai
import uvicorn
from rich.console import Console
from rich.table import Table

from reasoner import Reasoner
from server import ServerConfig, create_app

QUESTIONS = [f"What is {a} + {b}? Explain briefly." for a in range(3, 67, 8) for b in range(5, 45, 5)]


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


async def measure(reasoner: Reasoner, repeats: int, strategy: str, budget: int) -> list[tuple[str, int, float]]:
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
        rows = []
        for _ in range(repeats):
            rows.append(("in-process asolve", *await in_process(reasoner, strategy, budget)))
            rows.append(("reasoner serve (HTTP)", *await through_server(reasoner, client, strategy, budget)))
        return rows
    finally:
        await client.close()
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
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
    for column in ("run", "requests", "generated tokens", "wall s", "requests/s", "tokens/s"):
        table.add_column(column, justify="right")
    for name, tokens, seconds in rows:
        count = len(QUESTIONS)
        table.add_row(
            name, str(count), str(tokens), f"{seconds:.2f}", f"{count / seconds:.2f}", f"{tokens / seconds:.1f}"
        )
    console = Console()
    console.print(table)
    token_ratios = [
        (served_tokens / served_s) / (local_tokens / local_s)
        for (_, local_tokens, local_s), (_, served_tokens, served_s) in zip(rows[::2], rows[1::2], strict=True)
    ]
    request_ratios = [
        local_s / served_s for (_, _, local_s), (_, _, served_s) in zip(rows[::2], rows[1::2], strict=True)
    ]
    console.print(f"per-repeat tokens/s ratios: {', '.join(f'{ratio:.3f}' for ratio in token_ratios)}")
    console.print(f"per-repeat requests/s ratios: {', '.join(f'{ratio:.3f}' for ratio in request_ratios)}")
    console.print(f"server / in-process requests/s (median): {statistics.median(request_ratios):.3f}")
    console.print(f"server / in-process tokens/s (median): {statistics.median(token_ratios):.3f}")


if __name__ == "__main__":
    main()
