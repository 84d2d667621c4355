// Sign in with an API key: checked against the API before it is kept, so a wrong key never gets stored.
import { request } from '../api.js';
import { alertBox, field, guarded, h, replace } from '../dom.js';
import { getKey, setKey } from '../session.js';

export function render(root, { navigate, takeNotice }) {
  const { message, next } = takeNotice();
  const input = h('input', { type: 'password', name: 'key', required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'sk-ft-…' });
  const region = h('div', { class: 'form-status', 'aria-live': 'polite' });
  if (message) region.append(alertBox(message, message.startsWith('Signed out') ? 'info' : 'error'));
  const form = h(
    'form',
    { class: 'card signin', method: 'post', novalidate: true },
    field('API key', input, 'Kept in this browser tab only (session storage); closing the tab forgets it.'),
    region,
    h('button', { type: 'submit', class: 'button-primary' }, 'Sign in'),
  );
  form.addEventListener('submit', guarded(region, async () => {
    const key = input.value.trim();
    if (!key) {
      replace(region, alertBox('Type an API key.'));
      input.focus();
      return;
    }
    // Any authenticated read tells whether the key is valid; the models list is the smallest.
    await request('/v1/models', { key });
    setKey(key);
    input.value = '';
    navigate(next ?? '#/jobs');
  }));
  replace(
    root,
    h('h1', {}, getKey() ? 'Switch key' : 'Sign in'),
    h('p', { class: 'lede' }, 'Use a platform API key. The console calls the same /v1 API as the SDK, with this key.'),
    form,
  );
  input.focus();
}
