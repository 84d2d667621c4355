// The API key lives only in this tab's session storage: never in a URL, a cookie or a log line,
// and it is gone when the tab closes.
const STORAGE_KEY = 'finetune.console.apiKey';

export function getKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function setKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}
