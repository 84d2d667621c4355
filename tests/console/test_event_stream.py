"""The console's event-stream client in the browser: chunk boundaries anywhere, and a dropped stream resumed.

`fetch` is replaced inside the page by one that serves a stream in awkward pieces and drops the first
connection midway: the client must parse every event once and reconnect with Last-Event-ID.
"""

from __future__ import annotations

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
