// Playground: chat with any model the key may use, the answer streamed as OpenAI's chat.completion.chunk
// events (`data: {...}` lines, then `data: [DONE]`) from POST /v1/chat/completions.
import { getJSON, request } from '../api.js';
import { alertBox, field, guarded, h, replace } from '../dom.js';
import { readEvents } from '../sse.js';

function messageView(message) {
  return h('li', { class: `message message-${message.role}` },
    h('span', { class: 'role' }, message.role === 'assistant' ? 'Model' : message.role === 'user' ? 'You' : 'System'),
    h('div', { class: 'content' }, message.content || null));
}

function withClass(node, name) {
  node.classList.add(name);
  return node;
}

// Appends each streamed piece of the answer to `target`; resolves with the finish reason.
async function streamAnswer(response, target) {
  let finishReason = null;
  let failure = null;
  await readEvents(response.body, (event) => {
    if (event.data === '[DONE]') return;
    const chunk = JSON.parse(event.data);
    if (chunk.error) {
      failure = chunk.error.message ?? 'The model stopped with an error.';
      return;
    }
    for (const choice of chunk.choices ?? []) {
      if (choice.delta?.content) target.append(choice.delta.content);
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  });
  if (failure) throw new Error(failure);
  return finishReason;
}

export async function render(root, { params: [wanted], signal }) {
  const region = h('div', { 'aria-live': 'polite' });
  replace(root, h('h1', {}, 'Playground'), region);
  // Models the serving engine answers for (`served`); every model the key sees where the API does not say.
  const models = (await getJSON('/v1/models', { signal })).data.filter((model) => model.served !== false);
  if (!models.length) {
    root.append(alertBox('This key may use no model yet.', 'info'));
    return;
  }
  const chosen = wanted ? decodeURIComponent(wanted) : (models.find((model) => model.parent) ?? models[0]).id;
  const modelSelect = h('select', { name: 'model' }, models.map((model) => h('option', { value: model.id, selected: model.id === chosen },
    model.parent ? `${model.id} (fine-tuned)` : model.id)));
  const system = h('textarea', { name: 'system', rows: '2', placeholder: 'Optional instructions for the model' });
  const temperature = h('input', { type: 'number', name: 'temperature', min: '0', max: '2', step: '0.1', value: '0.7' });
  const maxTokens = h('input', { type: 'number', name: 'max_tokens', min: '1', max: '4096', step: '1', value: '256' });
  const transcript = h('ol', { class: 'transcript', 'aria-label': 'Conversation' });
  const prompt = h('textarea', { name: 'prompt', rows: '3', required: true, placeholder: 'Ask something… (Ctrl+Enter sends)' });
  const send = h('button', { type: 'submit', class: 'button-primary' }, 'Send');
  const stop = h('button', { type: 'button', class: 'button-quiet', disabled: true }, 'Stop');
  const clear = h('button', { type: 'button', class: 'button-quiet' }, 'Clear conversation');
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const compose = h('form', { class: 'compose', method: 'post', novalidate: true },
    field('Message', prompt), h('div', { class: 'actions' }, send, stop, clear), status);
  root.append(
    h('div', { class: 'card form-grid settings' }, withClass(field('Model', modelSelect), 'field-model'), field('Temperature', temperature),
      field('Max tokens', maxTokens), h('div', { class: 'field wide' }, h('label', { for: 'system-prompt' }, 'System prompt'), system)),
    h('div', { class: 'card chat' }, transcript, compose),
  );
  system.id = 'system-prompt';
  const history = [];
  let running = null;

  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) compose.requestSubmit();
  });
  stop.addEventListener('click', () => running?.abort());
  clear.addEventListener('click', () => {
    history.length = 0;
    replace(transcript);
    replace(status);
  });
  compose.addEventListener('submit', guarded(region, async () => {
    const text = prompt.value.trim();
    if (!text || running) return;
    history.push({ role: 'user', content: text });
    transcript.append(messageView({ role: 'user', content: text }));
    prompt.value = '';
    const answer = messageView({ role: 'assistant', content: '' });
    const content = answer.querySelector('.content');
    transcript.append(answer);
    const messages = [...(system.value.trim() ? [{ role: 'system', content: system.value.trim() }] : []), ...history];
    running = new AbortController();
    const stopAll = () => running?.abort();
    signal.addEventListener('abort', stopAll, { once: true });
    stop.disabled = false;
    transcript.setAttribute('aria-busy', 'true');
    replace(status, `Streaming from ${modelSelect.value}…`);
    try {
      const response = await request('/v1/chat/completions', {
        method: 'POST',
        headers: { Accept: 'text/event-stream' },
        json: { model: modelSelect.value, messages, stream: true, temperature: Number(temperature.value),
          max_tokens: Number.parseInt(maxTokens.value, 10) },
        signal: running.signal,
      });
      const finishReason = await streamAnswer(response, content);
      replace(status, `Finished (${finishReason ?? 'stop'}).`);
      answer.dataset.done = 'true';
      history.push({ role: 'assistant', content: content.textContent });
    } catch (error) {
      if (error.name === 'AbortError' && !signal.aborted) {
        // Stopped by the person: the partial answer stays part of the conversation.
        replace(status, 'Stopped.');
        history.push({ role: 'assistant', content: content.textContent });
        return;
      }
      // Failed: the question goes back into the box to send again.
      history.pop();
      answer.remove();
      transcript.lastElementChild?.remove();
      prompt.value = text;
      replace(status);
      throw error;
    } finally {
      signal.removeEventListener('abort', stopAll);
      running = null;
      stop.disabled = true;
      transcript.removeAttribute('aria-busy');
    }
  }));
  prompt.focus();
}
