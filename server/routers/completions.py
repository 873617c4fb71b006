"""`POST /v1/completions`: each prompt is a question solved on its own, with the whole budget."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from server.prompt_fit import check_prompts_fit
from server.protocol import CompletionChoice, CompletionRequest, CompletionResponse
from server.responses import cut_at_stops, finish_reason, reasoner_info, usage_info
from server.selection import plan_completions
from server.state import StateDep, check_api_key, new_response_id, solutions_unless_disconnected
from server.streaming import StreamWriter, stream_solves

router = APIRouter(dependencies=[Depends(check_api_key)])


@router.post("/v1/completions", response_model=None)
async def completions(
    body: CompletionRequest, request: Request, state: StateDep
) -> CompletionResponse | StreamingResponse:
    state.service.check_request_size(len(body.prompts()))
    plans = plan_completions(body, state.config, state.reasoner)
    await check_prompts_fit(state.reasoner, [plan.prompt for plan in plans])
    state.service.admit(len(plans))
    response_id = new_response_id("cmpl")
    if body.stream:
        writer = StreamWriter("completion", response_id, plans[0].model)
        profiles = [state.reasoner.target(plan.on_model).profile for plan in plans]
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        events = stream_solves(state.service, plans, writer, include_usage, state.config.progress_interval_s, profiles)
        return StreamingResponse(events, media_type="text/event-stream")
    solutions = await solutions_unless_disconnected(request, [state.service.start(plan) for plan in plans])
    choices = [
        CompletionChoice(
            index=index, text=cut_at_stops(solution.text, plan.stops), finish_reason=finish_reason(solution)
        )
        for index, (plan, solution) in enumerate(zip(plans, solutions, strict=True))
    ]
    return CompletionResponse(
        id=response_id,
        model=plans[0].model,
        choices=choices,
        usage=usage_info(solutions),
        reasoner=[reasoner_info(solution) for solution in solutions],
    )
