// The public /v1 API, called with the key the person typed (Bearer auth), and nothing else.
import { getKey } from './session.js';

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `The API answered HTTP ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = error?.code ?? null;
    this.param = error?.param ?? null;
    this.details = error?.details ?? null;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body?.error ?? null);
}

// `key` signs one request with a key that is not stored yet (signing in); otherwise the stored key is used,
// and a 401 tells the shell to sign out.
export async function request(path, { method = 'GET', json, form, headers = {}, signal, key } = {}) {
  const secret = key ?? getKey();
  const init = { method, signal, cache: 'no-store', credentials: 'omit', headers: { Accept: 'application/json', ...headers } };
  if (secret) init.headers.Authorization = `Bearer ${secret}`;
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  if (form) init.body = form;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { message: 'The API could not be reached; check the connection and retry.' });
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && key === undefined) {
      error.handled = true; // the shell signs out and says why
      window.dispatchEvent(new CustomEvent('console:unauthorized', { detail: error.message }));
    }
    throw error;
  }
  return response;
}

export async function getJSON(path, options = {}) {
  return (await request(path, options)).json();
}

export async function postJSON(path, json, options = {}) {
  return (await request(path, { ...options, method: 'POST', json })).json();
}

export async function deleteJSON(path, options = {}) {
  return (await request(path, { ...options, method: 'DELETE' })).json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function enc(id) {
  return encodeURIComponent(id);
}

// Every item of a cursor-paginated list (OpenAI's `has_more` + `after`), up to `max` items; `params` are the
// list's own filters (`order`, `status`).
export async function listAll(path, { limit = 100, max = 1000, params = {}, signal } = {}) {
  const items = [];
  let after = null;
  for (;;) {
    const page = await getJSON(`${path}${query({ ...params, limit, after })}`, { signal });
    items.push(...page.data);
    if (!page.has_more || !page.data.length || items.length >= max) return items;
    after = page.data[page.data.length - 1].id;
  }
}

function filenameOf(response, fallback) {
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const match = /filename="?([^";]+)"?/i.exec(disposition);
  return match ? match[1] : fallback;
}

// A link cannot carry the Authorization header, so a download is fetched with it, then handed to the
// browser as a blob. The whole file passes through memory: the CLI suits multi-gigabyte merged weights better.
export async function download(path, fallbackName, { signal } = {}) {
  const response = await request(path, { headers: { Accept: '*/*' }, signal });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filenameOf(response, fallbackName);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}
