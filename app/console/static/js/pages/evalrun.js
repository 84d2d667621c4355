// One eval run (its `report_url`): counts, results per criterion, tokens per model, and its output items with
// each criterion's score and verdict and the sample's output; the failed ones alone on request (the API's
// `status=fail`). Read again every 2 s while the run is queued or in progress.
import { getJSON, query } from '../api.js';
import {
  alertBox, definitions, formatNumber, formatTime, guarded, h, replace, replaceKeepingFocus, section, statusBadge, table,
} from '../dom.js';
import { countsView, criteriaResultsView, evalHash, evalPath, isLive, runPath, runProgress } from '../evals.js';

const PAGE_SIZE = 50;
const REFRESH_MILLISECONDS = 2000;
const SHOWN_CHARACTERS = 400;

function clipped(text) {
  return text.length > SHOWN_CHARACTERS ? `${text.slice(0, SHOWN_CHARACTERS)}…` : text;
}

// The item's fields as `name: value`, strings as they are and anything else as JSON.
function itemText(item) {
  return clipped(Object.entries(item ?? {})
    .map(([name, value]) => `${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' · '));
}

function outputView(sample) {
  if (sample?.error) return h('span', { class: 'warn-text' }, `${sample.error.code ?? 'error'}: ${sample.error.message ?? ''}`);
  const text = (sample?.output ?? []).map((message) => (typeof message.content === 'string'
    ? message.content : JSON.stringify(message.content))).join('\n');
  return text ? clipped(text) : h('span', { class: 'muted' }, '(empty)');
}

function gradeView(result) {
  if (!result) return '—';
  const failure = result.sample?.error;
  return h('span', { class: result.passed ? 'ok-text' : 'warn-text', title: failure ?? null },
    `${formatNumber(result.score, 3)} · ${result.passed ? 'pass' : 'fail'}`);
}

function criterionNames(criteria, items) {
  const names = (criteria ?? []).map((criterion) => criterion.name);
  for (const item of items) {
    for (const result of item.results ?? []) if (!names.includes(result.name)) names.push(result.name);
  }
  return names;
}

function itemRows(items, criteria, failedOnly) {
  const grades = criterionNames(criteria, items).map((name) => ({
    label: name,
    cell: (item) => gradeView((item.results ?? []).find((result) => result.name === name)),
  }));
  return table(failedOnly ? 'Failed output items' : 'Output items', [
    { label: 'Item', cell: (item) => formatNumber(item.datasource_item_id) },
    { label: 'Status', cell: (item) => statusBadge(item.status) },
    ...grades,
    { label: 'Output', cell: (item) => outputView(item.sample), class: 'wrap output' },
    { label: 'Input', cell: (item) => itemText(item.datasource_item), class: 'wrap excerpt' },
  ], items, { empty: failedOnly ? 'No item failed.' : 'No item graded yet.' });
}

function summaryView(parent, run) {
  const source = run.data_source?.source ?? {};
  return definitions([
    ['Status', statusBadge(run.status)],
    ['Eval', h('a', { href: evalHash(parent.id) }, parent.name || parent.id)],
    ['Model', run.model ? h('code', {}, run.model) : 'none: the samples were given with the items'],
    ['Data source', `${run.data_source?.type ?? '—'}${source.type === 'file_content' ? ` (${(source.content ?? []).length} rows given)` : ''}`],
    source.type === 'file_id' ? ['File', h('a', { href: `#/files/${source.id}` }, h('code', {}, source.id))] : null,
    ['Progress', runProgress(run)],
    ['Created', formatTime(run.created_at)],
    run.fine_tuning_job_id ? ['Job', h('a', { href: `#/jobs/${run.fine_tuning_job_id}` }, h('code', {}, run.fine_tuning_job_id))] : null,
    ['Id', h('code', {}, run.id)],
  ]);
}

function usageView(usage) {
  return table('Tokens per model', [
    { label: 'Model', cell: (row) => h('code', {}, row.model_name), class: 'wrap' },
    { label: 'Calls', cell: (row) => formatNumber(row.invocation_count) },
    { label: 'Prompt tokens', cell: (row) => formatNumber(row.prompt_tokens) },
    { label: 'Completion tokens', cell: (row) => formatNumber(row.completion_tokens) },
    { label: 'Total tokens', cell: (row) => formatNumber(row.total_tokens) },
  ], usage ?? [], { empty: 'No model was called: the samples were given and no grader asks a model.' });
}

class RunPage {
  constructor(root, evalId, runId, signal) {
    this.evalId = evalId;
    this.runId = runId;
    this.signal = signal;
    this.parent = null;
    this.run = null;
    this.shown = PAGE_SIZE;
    this.drawn = null;
    this.heading = h('h1', {}, 'Run ', h('code', {}, runId));
    this.region = h('div', { 'aria-live': 'polite' });
    this.summary = h('div');
    this.counts = h('div');
    this.criteria = h('div');
    this.usage = h('div');
    this.items = h('div', { 'aria-live': 'off' });
    this.itemsCount = h('p', { class: 'muted', 'aria-live': 'polite' });
    this.failedOnly = h('input', { type: 'checkbox', id: 'failed-items-only' });
    this.more = h('button', { type: 'button', class: 'button-quiet', hidden: true }, 'Show more items');
    this.failedOnly.addEventListener('change', guarded(this.region, () => {
      this.shown = PAGE_SIZE;
      return this.refreshItems();
    }));
    this.more.addEventListener('click', guarded(this.region, () => {
      this.shown += PAGE_SIZE;
      return this.refreshItems();
    }));
    replace(root, this.heading, this.region);
    this.root = root;
  }

  async load() {
    [this.parent, this.run] = await Promise.all([
      getJSON(evalPath(this.evalId), { signal: this.signal }),
      getJSON(runPath(this.evalId, this.runId), { signal: this.signal }),
    ]);
    replace(this.heading, this.run.name || this.run.id);
    this.root.append(
      section('Summary', this.summary),
      h('div', { class: 'columns' }, section('Results', this.counts), section('Per testing criterion', this.criteria)),
      section('Output items', h('div', { class: 'inline-field' }, this.failedOnly,
        h('label', { for: 'failed-items-only' }, 'Failed items only')), this.itemsCount, this.items, this.more),
      section('Tokens per model', this.usage),
    );
    this.drawRun();
    await this.refreshItems();
  }

  drawRun() {
    const { run, parent } = this;
    replaceKeepingFocus(this.summary, summaryView(parent, run),
      run.error ? alertBox(`${run.error.code ?? 'error'}: ${run.error.message ?? ''}`) : null);
    replace(this.counts, countsView(run.result_counts));
    replace(this.criteria, criteriaResultsView(run.per_testing_criteria_results, parent.testing_criteria));
    replace(this.usage, usageView(run.per_model_usage));
  }

  // The first `shown` items (the failed ones only when asked), read again on each refresh while the run is live.
  async refreshItems() {
    const failedOnly = this.failedOnly.checked;
    const items = [];
    let after = null;
    let hasMore = false;
    do {
      const params = { limit: Math.min(100, this.shown - items.length), after, status: failedOnly ? 'fail' : null };
      const page = await getJSON(`${runPath(this.evalId, this.runId)}/output_items${query(params)}`, { signal: this.signal });
      items.push(...page.data);
      hasMore = page.has_more;
      after = page.data.at(-1)?.id;
    } while (hasMore && items.length < this.shown && after);
    if (failedOnly !== this.failedOnly.checked) return; // the filter changed while this was read: its own read draws
    const fingerprint = JSON.stringify([failedOnly, items.map((item) => [item.id, item.status])]);
    if (fingerprint !== this.drawn) replaceKeepingFocus(this.items, itemRows(items, this.parent.testing_criteria, failedOnly));
    this.drawn = fingerprint;
    const counts = this.run.result_counts ?? {};
    const total = failedOnly ? counts.failed ?? 0 : counts.total ?? 0;
    replace(this.itemsCount, `Showing ${items.length} of ${total} ${failedOnly ? 'failed ' : ''}items.`);
    this.more.hidden = !hasMore;
    this.items.dataset.loaded = 'true';
  }

  async refresh() {
    if (!isLive(this.run)) return;
    this.run = await getJSON(runPath(this.evalId, this.runId), { signal: this.signal });
    this.drawRun();
    await this.refreshItems();
  }
}

export async function render(root, { params: [evalId, runId], signal, every }) {
  const page = new RunPage(root, evalId, runId, signal);
  await page.load();
  every(REFRESH_MILLISECONDS, () => page.refresh().catch((error) => {
    if (error.name !== 'AbortError' && !error.handled) replace(page.region, alertBox(error.message));
  }));
}
