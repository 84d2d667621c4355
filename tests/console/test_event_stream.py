"""The console's stream clients in the browser, against streams served by a `fetch` replaced inside the page.

The job page's event stream: served in awkward pieces, the first connection dropped midway; every event
must be parsed once and the stream resumed with Last-Event-ID. The playground: OpenAI's documented
`chat.completion.chunk` stream, each piece shown as it comes (the real engine's test needs the serving
engine).
"""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.conftest import Console

RESUME = """
async () => {
  const { followEvents } = await import('/console/js/sse.js');
  const encoder = new TextEncoder();
  // One piece per read; a failing stream errors once the reader has taken every piece (as a cut network does).
  const body = (pieces, fail) => {
    let index = 0;
    return new ReadableStream({
      async pull(controller) {
        if (index < pieces.length) return controller.enqueue(encoder.encode(pieces[index++]));
        if (!fail) return controller.close();
        await new Promise((done) => setTimeout(done, 50));
        return controller.error(new TypeError('network error'));
      },
    });
  };
  // Events a and b, cut inside a CRLF, inside a field name and inside the data; then the connection drops.
  const first = ['id: ev-a\\r', '\\nevent: event\\r\\nda', 'ta: {"n": 1}\\r\\n\\r\\n', ': ping\\r\\n\\r\\n',
                 'id: ev-b\\nevent: event\\ndata: {"n"', ': 2}\\n\\n', 'id: ev-c\\nevent: event\\ndata: {"n": 3'];
  const second = ['id: ev-c\\r\\nevent: event\\r\\ndata: {"n": 3}\\r\\n\\r\\n',
                  'event: done\\r\\ndata: {}\\r\\n\\r\\n'];
  const seen = [];
  const sentIds = [];
  window.fetch = async (_, init) => {
    sentIds.push(init.headers['Last-Event-ID'] ?? null);
    const pieces = sentIds.length === 1 ? first : second;
    const headers = { 'Content-Type': 'text/event-stream' };
    return new Response(body(pieces, sentIds.length === 1), { status: 200, headers });
  };
  const states = [];
  await followEvents('/v1/fine_tuning/jobs/ftjob-x/events?stream=true', {
    signal: new AbortController().signal, retryMilliseconds: 10,
    onEvent: (event) => seen.push([event.type, event.id, event.data]),
    onState: (state) => states.push(state),
  });
  return { seen, sentIds, states };
}
"""


async def test_stream_parsed_across_chunks_and_resumed_with_last_event_id(console: Console) -> None:
    await console.open("#/signin")
    result = await console.page.evaluate(RESUME)
    assert result["seen"] == [
        ["event", "ev-a", '{"n": 1}'],
        ["event", "ev-b", '{"n": 2}'],
        ["event", "ev-c", '{"n": 3}'],  # the half-sent event is not taken until it is whole
        ["done", None, "{}"],
    ]
    assert result["sentIds"] == [None, "ev-b"]
    assert result["states"] == ["open", "reconnecting", "open", "done"]
    console.assert_no_script_errors()


# OpenAI's streaming wire format, as documented for `stream: true`: chunk objects, then [DONE].
FAKE_ENGINE = """
() => {
  const realFetch = window.fetch;
  const chunk = (delta, finish = null) => JSON.stringify({
    id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', system_fingerprint: 'fp',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  const lines = [chunk({ role: 'assistant', content: '' }), chunk({ content: 'The robot ' }),
                 chunk({ content: 'eats green ' }), chunk({ content: 'light.' }), chunk({}, 'stop'), '[DONE]'];
  window.sentBodies = [];
  window.fetch = async (url, init) => {
    if (!String(url).endsWith('/v1/chat/completions')) return realFetch(url, init);
    window.sentBodies.push(JSON.parse(init.body));
    const encoder = new TextEncoder();
    let index = 0;
    const body = new ReadableStream({
      async pull(controller) {
        if (index === lines.length) return controller.close();
        await new Promise((done) => setTimeout(done, 20));
        return controller.enqueue(encoder.encode(`data: ${lines[index++]}\\n\\n`));
      },
    });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  };
}
"""


async def test_playground_renders_openai_chunks_as_they_arrive(served_console: Console, make_user, tiny_model) -> None:  # type: ignore[no-untyped-def]
    console = served_console  # the model list says which models are served; the answer below is the page's own
    user = await make_user("playground@acme.example.com")
    page = console.page
    await console.sign_in(user.key)
    await page.get_by_role("link", name="Playground").click()
    await expect(page.get_by_label("Model", exact=True)).to_have_value(tiny_model)
    await page.evaluate(FAKE_ENGINE)
    await page.get_by_label("System prompt").fill("Answer from memory.")
    await page.get_by_label("Temperature").fill("0")
    await page.get_by_label("Message").fill("What does the robot eat?")
    await page.get_by_label("Message").press("Control+Enter")
    answer = page.locator(".message-assistant[data-done='true'] .content")
    await expect(answer).to_have_text("The robot eats green light.")
    assert await answer.evaluate("(node) => node.childNodes.length") == 3  # one text node per streamed piece
    sent = await page.evaluate("() => window.sentBodies")
    messages = [{"role": "system", "content": "Answer from memory."},
                {"role": "user", "content": "What does the robot eat?"}]  # fmt: skip
    assert sent == [{"model": tiny_model, "stream": True, "temperature": 0, "max_tokens": 256, "messages": messages}]
    await expect(page.get_by_text("Finished (stop).")).to_be_visible()
    console.assert_no_script_errors()
