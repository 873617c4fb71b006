"""`POST /v1/chat/completions`: one solve per chat; the answer is the content, the thinking the reasoning."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from server.prompt_fit import check_prompts_fit
from server.protocol import ChatChoice, ChatCompletionRequest, ChatCompletionResponse, ChatMessageOut
from server.responses import cut_at_stops, finish_reason, reasoner_info, reasoning_text, usage_info
from server.selection import plan_chat
from server.state import StateDep, check_api_key, new_response_id, solutions_unless_disconnected
from server.streaming import StreamWriter, stream_solves

router = APIRouter(dependencies=[Depends(check_api_key)])


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: StateDep
) -> ChatCompletionResponse | StreamingResponse:
    plan = plan_chat(body, state.config, state.reasoner)
    await check_prompts_fit(state.reasoner, [plan.prompt])
    state.service.admit()
    response_id = new_response_id("chatcmpl")
    if body.stream:
        writer = StreamWriter("chat", response_id, plan.model)
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        profiles = [state.reasoner.target(plan.on_model).profile]
        events = stream_solves(state.service, [plan], writer, include_usage, state.config.progress_interval_s, profiles)
        return StreamingResponse(events, media_type="text/event-stream")
    (solution,) = await solutions_unless_disconnected(request, [state.service.start(plan)])
    message = ChatMessageOut(
        content=cut_at_stops(solution.text, plan.stops), reasoning_content=reasoning_text(solution.trace)
    )
    return ChatCompletionResponse(
        id=response_id,
        model=plan.model,
        choices=[ChatChoice(message=message, finish_reason=finish_reason(solution))],
        usage=usage_info([solution]),
        reasoner=reasoner_info(solution),
    )
