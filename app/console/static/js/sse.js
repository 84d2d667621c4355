// Server-sent events read with fetch(): EventSource cannot send an Authorization header, and the key
// must never travel in a URL. The parser follows the HTML standard's event-stream rules.
import { ApiError, request } from './api.js';

// Calls onEvent({type, data, id}) for every event of a response body; resolves when the body ends.
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let heldCarriageReturn = false;
  let data = [];
  let type = '';
  let id = null;

  const dispatch = () => {
    if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id });
    data = [];
    type = '';
    id = null;
  };
  const takeLine = (line) => {
    if (line === '') return dispatch();
    if (line.startsWith(':')) return undefined; // a comment: the server's keep-alive ping
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') data.push(value);
    else if (name === 'event') type = value;
    else if (name === 'id' && !value.includes('\0')) id = value;
    return undefined;
  };

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let text = (heldCarriageReturn ? '\r' : '') + value;
    // A CR at a chunk's end may be the first half of CRLF: decide when the next chunk comes.
    heldCarriageReturn = text.endsWith('\r');
    if (heldCarriageReturn) text = text.slice(0, -1);
    buffer += text.replace(/\r\n?/g, '\n');
    const lines = buffer.split('\n');
    buffer = lines.pop();
    lines.forEach(takeLine);
  }
  if (heldCarriageReturn) takeLine(buffer);
}

function pause(milliseconds, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Follows a job's event stream until its `done` event, reconnecting after a dropped connection with
// Last-Event-ID so no event is lost or repeated. onState('open' | 'reconnecting' | 'done') tells the page.
export async function followEvents(path, { signal, onEvent, onState = () => {}, retryMilliseconds = 1500 }) {
  let lastEventId = null;
  while (!signal.aborted) {
    let finished = false;
    try {
      const headers = { Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const response = await request(path, { headers, signal });
      onState('open');
      await readEvents(response.body, (event) => {
        if (event.id) lastEventId = event.id;
        if (event.type === 'done') finished = true;
        onEvent(event);
      });
    } catch (error) {
      if (error.name === 'AbortError' || signal.aborted) return;
      const refused = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
      if (refused) throw error;
    }
    if (finished) {
      onState('done');
      return;
    }
    onState('reconnecting');
    await pause(retryMilliseconds, signal);
  }
}
