"""End-to-end checks of the Tollgate proxy with the official client SDKs.

Runs against a live stack (see deploy/sdk-test.sh, which starts one with deploy/dev.sh and sets):
  TOLLGATE_PROXY_URL    proxy root, e.g. http://127.0.0.1:8080 (no /v1)
  TOLLGATE_VIRTUAL_KEY  a virtual key of the demo tenant
  TOLLGATE_ADMIN_URL    admin API root, e.g. http://127.0.0.1:8081
  TOLLGATE_ADMIN_TOKEN  a platform admin token

Both the `mistralai` SDK (server_url = host root) and the `openai` SDK (base_url = root + /v1) are
exercised wherever the SDK has the feature (openai has no FIM). Every successful model call records
the model and the usage the SDK reported; the last test checks the admin usage report against it.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

PROXY_URL = os.environ.get("TOLLGATE_PROXY_URL", "").rstrip("/")
VIRTUAL_KEY = os.environ.get("TOLLGATE_VIRTUAL_KEY", "")
ADMIN_URL = os.environ.get("TOLLGATE_ADMIN_URL", "").rstrip("/")
ADMIN_TOKEN = os.environ.get("TOLLGATE_ADMIN_TOKEN", "")

if not (PROXY_URL and VIRTUAL_KEY and ADMIN_URL and ADMIN_TOKEN):
    pytest.skip(
        "needs TOLLGATE_PROXY_URL, TOLLGATE_VIRTUAL_KEY, TOLLGATE_ADMIN_URL, TOLLGATE_ADMIN_TOKEN "
        "(run deploy/sdk-test.sh)",
        allow_module_level=True,
    )

from mistralai.client import Mistral  # noqa: E402
from mistralai.client.errors import MistralError  # noqa: E402
import openai  # noqa: E402

CHAT_MODEL = "mistral-small-latest"
FIM_MODEL = "codestral-latest"
EMBED_MODEL = "mistral-embed"
EMBED_DIM = 1024

STARTED = datetime.now(timezone.utc) - timedelta(minutes=5)

# model -> {"requests": n, "prompt": tokens, "completion": tokens}, from what the SDKs reported.
EXPECTED: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "prompt": 0, "completion": 0})


def record(model: str, usage) -> None:
    """Notes one metered request as soon as its response is in (before any assertion can fail)."""
    row = EXPECTED[model]
    row["requests"] += 1
    row["prompt"] += getattr(usage, "prompt_tokens", 0) or 0
    row["completion"] += getattr(usage, "completion_tokens", 0) or 0


def check_usage(usage) -> None:
    assert usage is not None, "response has no usage"
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def check_text(text: str | None) -> str:
    assert isinstance(text, str) and text.strip(), f"empty content: {text!r}"
    assert any(ch.isalpha() for ch in text), f"no words in content: {text!r}"
    return text


@pytest.fixture(scope="module")
def mistral() -> Mistral:
    return Mistral(api_key=VIRTUAL_KEY, server_url=PROXY_URL, timeout_ms=30_000)


@pytest.fixture(scope="module")
def oai() -> openai.OpenAI:
    return openai.OpenAI(api_key=VIRTUAL_KEY, base_url=PROXY_URL + "/v1", timeout=30, max_retries=0)


MESSAGES = [{"role": "user", "content": "Say hello to the gateway."}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "unit"],
        },
    },
}


def check_tool_arguments(arguments) -> dict:
    # On the wire (and so in both SDKs) the arguments are JSON text, not an object.
    assert isinstance(arguments, str), f"arguments are not JSON text: {arguments!r}"
    parsed = json.loads(arguments)
    assert isinstance(parsed, dict), f"arguments are not a JSON object: {arguments!r}"
    assert isinstance(parsed.get("location"), str) and parsed["location"], parsed
    assert parsed.get("unit") in ("celsius", "fahrenheit"), parsed
    return parsed


# ---------------------------------------------------------------- chat


def test_chat_mistralai(mistral):
    res = mistral.chat.complete(model=CHAT_MODEL, messages=MESSAGES)
    record(CHAT_MODEL, res.usage)
    assert res.object == "chat.completion"
    assert res.id
    assert len(res.choices) == 1
    choice = res.choices[0]
    assert choice.message.role == "assistant"
    check_text(choice.message.content)
    assert choice.finish_reason == "stop"
    check_usage(res.usage)


def test_chat_openai(oai):
    res = oai.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    record(CHAT_MODEL, res.usage)
    assert res.object == "chat.completion"
    assert res.id
    assert len(res.choices) == 1
    choice = res.choices[0]
    assert choice.message.role == "assistant"
    check_text(choice.message.content)
    assert choice.finish_reason == "stop"
    check_usage(res.usage)


# ---------------------------------------------------------------- streaming chat


def check_stream(chunks, content_of) -> None:
    """Chunks are chat.completion.chunk objects; the text comes in several deltas; exactly the
    final chunk carries usage; the assembled text is real text."""
    assert len(chunks) >= 2, f"expected several chunks, got {len(chunks)}"
    parts, finish = [], None
    for chunk in chunks:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text = content_of(choice.delta)
            if text:
                parts.append(text)
            if choice.finish_reason:
                finish = choice.finish_reason
    check_text("".join(parts))
    assert len(parts) >= 2, f"text not streamed in pieces: {parts!r}"
    assert finish == "stop"
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert with_usage == [len(chunks) - 1], f"usage must come once, in the final chunk (chunks with usage: {with_usage} of {len(chunks)})"
    check_usage(chunks[-1].usage)


def test_stream_mistralai(mistral):
    with mistral.chat.stream(model=CHAT_MODEL, messages=MESSAGES) as stream:
        chunks = [event.data for event in stream]
    record(CHAT_MODEL, chunks[-1].usage if chunks else None)
    check_stream(chunks, lambda delta: delta.content if isinstance(delta.content, str) else None)


def test_stream_openai(oai):
    chunks = list(oai.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True))
    record(CHAT_MODEL, chunks[-1].usage if chunks else None)
    check_stream(chunks, lambda delta: delta.content)


# ---------------------------------------------------------------- tool calls


def test_tool_call_mistralai(mistral):
    res = mistral.chat.complete(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="any",
    )
    record(CHAT_MODEL, res.usage)
    choice = res.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) >= 1
    call = calls[0]
    assert call.id
    assert call.function.name == "get_weather"
    check_tool_arguments(call.function.arguments)
    check_usage(res.usage)


def test_tool_call_openai(oai):
    res = oai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="any",  # Mistral's spelling of OpenAI's "required"; the SDK passes it through
    )
    record(CHAT_MODEL, res.usage)
    choice = res.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) >= 1
    call = calls[0]
    assert call.id
    assert call.type == "function"
    assert call.function.name == "get_weather"
    check_tool_arguments(call.function.arguments)
    check_usage(res.usage)


# ---------------------------------------------------------------- JSON mode

JSON_MESSAGES = [{"role": "user", "content": "Reply with a JSON object with a key 'reply'."}]


def test_json_mode_mistralai(mistral):
    res = mistral.chat.complete(
        model=CHAT_MODEL, messages=JSON_MESSAGES, response_format={"type": "json_object"}
    )
    record(CHAT_MODEL, res.usage)
    content = res.choices[0].message.content
    assert isinstance(content, str)
    parsed = json.loads(content)
    assert isinstance(parsed, dict) and parsed, f"not a non-empty JSON object: {content!r}"
    check_usage(res.usage)


def test_json_mode_openai(oai):
    res = oai.chat.completions.create(
        model=CHAT_MODEL, messages=JSON_MESSAGES, response_format={"type": "json_object"}
    )
    record(CHAT_MODEL, res.usage)
    content = res.choices[0].message.content
    parsed = json.loads(content)
    assert isinstance(parsed, dict) and parsed, f"not a non-empty JSON object: {content!r}"
    check_usage(res.usage)


# ---------------------------------------------------------------- FIM (mistralai only)


def test_fim_mistralai(mistral):
    res = mistral.fim.complete(
        model=FIM_MODEL,
        prompt="def fibonacci(n: int) -> int:\n",
        suffix="\nprint(fibonacci(10))\n",
    )
    record(FIM_MODEL, res.usage)
    assert res.id
    assert len(res.choices) == 1
    check_text(res.choices[0].message.content)
    assert res.choices[0].finish_reason == "stop"
    check_usage(res.usage)


# ---------------------------------------------------------------- embeddings

EMBED_INPUTS = ["Tollgate is a gateway.", "It meters every request.", "Third input."]


def test_embeddings_mistralai(mistral):
    res = mistral.embeddings.create(model=EMBED_MODEL, inputs=EMBED_INPUTS)
    record(EMBED_MODEL, res.usage)
    assert len(res.data) == len(EMBED_INPUTS)
    assert sorted(d.index for d in res.data) == list(range(len(EMBED_INPUTS)))
    for d in res.data:
        assert len(d.embedding) == EMBED_DIM
        assert all(isinstance(x, float) for x in d.embedding)
        assert any(x != 0 for x in d.embedding)
    for d in res.data:
        norm = math.sqrt(sum(x * x for x in d.embedding))
        assert abs(norm - 1) < 0.01, f"embedding not unit length: {norm}"
    assert res.usage.prompt_tokens > 0


def test_embeddings_openai(oai):
    # No encoding_format: the openai SDK then asks for base64 and decodes it itself.
    res = oai.embeddings.create(model=EMBED_MODEL, input=EMBED_INPUTS)
    record(EMBED_MODEL, res.usage)
    assert len(res.data) == len(EMBED_INPUTS)
    assert sorted(d.index for d in res.data) == list(range(len(EMBED_INPUTS)))
    for d in res.data:
        assert len(d.embedding) == EMBED_DIM
        assert any(x != 0 for x in d.embedding)
    for d in res.data:
        norm = math.sqrt(sum(x * x for x in d.embedding))
        assert abs(norm - 1) < 0.01, f"embedding not unit length: {norm}"
    assert res.usage.prompt_tokens > 0


def test_embeddings_openai_float(oai):
    res = oai.embeddings.create(model=EMBED_MODEL, input="one input", encoding_format="float")
    record(EMBED_MODEL, res.usage)
    assert len(res.data) == 1
    assert len(res.data[0].embedding) == EMBED_DIM
    assert all(isinstance(x, float) for x in res.data[0].embedding)


# ---------------------------------------------------------------- models


def test_models_mistralai(mistral):
    res = mistral.models.list()
    ids = {m.id for m in res.data}
    assert {CHAT_MODEL, FIM_MODEL, EMBED_MODEL} <= ids, sorted(ids)


def test_models_openai(oai):
    ids = {m.id for m in oai.models.list()}
    assert {CHAT_MODEL, FIM_MODEL, EMBED_MODEL} <= ids, sorted(ids)


# ---------------------------------------------------------------- invalid key

BAD_KEY = "tg-invalid-" + "0" * 32


def test_invalid_key_mistralai():
    client = Mistral(api_key=BAD_KEY, server_url=PROXY_URL, timeout_ms=30_000)
    with pytest.raises(MistralError) as info:
        client.chat.complete(model=CHAT_MODEL, messages=MESSAGES)
    assert info.value.status_code == 401, info.value.body
    assert json.loads(info.value.body)["type"] == "authentication_error", info.value.body


def test_invalid_key_openai():
    client = openai.OpenAI(api_key=BAD_KEY, base_url=PROXY_URL + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert info.value.status_code == 401
    assert info.value.type == "authentication_error", info.value.body


# ---------------------------------------------------------------- metering (keep last)


def admin_get(path: str, **query) -> dict:
    url = ADMIN_URL + path + ("?" + urllib.parse.urlencode(query) if query else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        assert res.status == 200
        return json.load(res)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def demo_tenant_id() -> str:
    tenants = admin_get("/v1/tenants")
    items = tenants["data"] if isinstance(tenants, dict) else tenants
    demo = [t for t in items if t.get("slug") == "demo"]
    assert demo, f"no demo tenant in {tenants}"
    return demo[0]["id"]


def usage_by_model(tenant_id: str) -> dict:
    to = datetime.now(timezone.utc) + timedelta(hours=1)
    report = admin_get(f"/v1/tenants/{tenant_id}/usage", groupBy="model", **{"from": iso(STARTED), "to": iso(to)})
    assert report["groupBy"] == "model"
    return {r["group"]: r for r in report["rows"]}


@pytest.fixture(scope="module", autouse=True)
def usage_baseline() -> dict:
    """Usage before this module's calls, so the check also holds on a stack that was used before."""
    return usage_by_model(demo_tenant_id())


def test_usage_reported_by_admin_api(usage_baseline):
    expected = {m: dict(v) for m, v in EXPECTED.items()}
    assert {CHAT_MODEL, FIM_MODEL, EMBED_MODEL} <= set(expected), f"model calls failed earlier: {expected}"
    tenant_id = demo_tenant_id()

    def delta(rows: dict, model: str, field: str) -> int:
        return rows.get(model, {}).get(field, 0) - usage_baseline.get(model, {}).get(field, 0)

    # Settlement is asynchronous: poll until every call we made shows up (or time runs out).
    deadline = time.monotonic() + 20
    while True:
        rows = usage_by_model(tenant_id)
        if all(delta(rows, m, "requests") >= e["requests"] for m, e in expected.items()):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)

    for model, e in expected.items():
        assert model in rows, f"no usage row for {model}: {rows}"
        got = {k: delta(rows, model, f) for k, f in
               (("requests", "requests"), ("prompt", "promptTokens"), ("completion", "completionTokens"))}
        assert got == e, f"{model}: admin usage {got} != what the SDKs reported {e}"
        assert delta(rows, model, "estimatedRequests") == 0, (model, rows[model])
        assert float(rows[model]["cost"]) > 0, (model, rows[model])
    unexpected = sorted(m for m in rows if m not in expected and delta(rows, m, "requests") != 0)
    assert not unexpected, f"usage billed to models we did not call: {unexpected}"
