// Elements are built node by node, never from HTML strings: text from the API can only ever be text
// (the page's Trusted Types policy refuses every HTML sink anyway).

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open']);

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) element[name] = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...flatten(children));
  return element;
}

function flatten(children) {
  return children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
}

export function replace(element, ...children) {
  element.replaceChildren(...flatten(children));
  return element;
}

let uniqueCounter = 0;
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

// A labelled form control: the <label> names the input for assistive technology and for tests.
export function field(labelText, control, hint) {
  control.id ||= uniqueId('field');
  const hintNode = hint ? h('small', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control, hintNode);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return '—';
  const date = new Date(unixSeconds * 1000);
  return h('time', { datetime: date.toISOString(), title: date.toISOString() }, dateTime.format(date));
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return value.toLocaleString();
  return Number(value.toPrecision(digits)).toString();
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status ?? 'unknown'}` }, (status ?? 'unknown').replace('_', ' '));
}

export function table(caption, columns, rows, { empty = 'Nothing yet.' } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((column) => h('th', { scope: 'col', class: column.class }, column.label)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((column) => h('td', {
        class: column.class, dataset: { label: column.label },
      }, column.cell(row)))))),
    ),
  );
}

// key/value pairs as a description list
export function definitions(pairs) {
  return h('dl', { class: 'pairs' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

export function alertBox(message, kind = 'error') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

export function section(title, ...children) {
  const headingId = uniqueId('section');
  return h('section', { class: 'panel', 'aria-labelledby': headingId }, h('h2', { id: headingId }, title), children);
}

export function progressBar(step, total, unit = 'steps') {
  if (!total) return h('span', { class: 'muted' }, step ? `step ${step}` : '—');
  const label = `${step ?? 0} of ${total} ${unit}`;
  return h(
    'span',
    { class: 'progress' },
    h('progress', { max: total, value: Math.min(step ?? 0, total), 'aria-label': label }),
    h('span', { class: 'progress-text' }, `${step ?? 0}/${total}`),
  );
}

// An event handler whose failure is shown in `region` (never left as an unhandled rejection); the button
// that started it is disabled until it ends, so a double click cannot send twice.
export function guarded(region, work) {
  return async (event) => {
    event?.preventDefault?.();
    const control = event?.submitter ?? (event?.currentTarget instanceof HTMLButtonElement ? event.currentTarget : null);
    if (control) control.disabled = true;
    if (region) replace(region);
    try {
      await work(event);
    } catch (error) {
      if (error.name !== 'AbortError' && !error.handled && region) replace(region, alertBox(error.message));
    } finally {
      if (control) control.disabled = false;
    }
  };
}

// Replaces a live-updated region without taking the keyboard focus away from the link or button it held.
export function replaceKeepingFocus(container, ...children) {
  const focused = container.contains(document.activeElement) ? document.activeElement : null;
  const key = focused?.getAttribute('href') ?? focused?.dataset.focusKey ?? null;
  replace(container, ...children);
  if (key === null) return;
  const again = [...container.querySelectorAll('a, button')].find(
    (element) => (element.getAttribute('href') ?? element.dataset.focusKey) === key,
  );
  again?.focus({ preventScroll: true });
}
