"""Serving: OpenAI's chat completions for base and fine-tuned models, answered by vLLM engines.

endpoints (POST /v1/chat/completions) -> service (Cerbos, model name -> ServingTarget, rate limit, usage)
-> gateway (InferenceGateway: adapters loaded on first use, one pooled HTTP client) -> engine (vLLM).
In-process callers (evaluation workers) use `InferenceGateway` with `wire.checked_request` and
`service.resolve` or a `ServingTarget` of their own; see docs/serving.md.
"""
