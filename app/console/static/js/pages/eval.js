// One eval: its testing criteria and the schema of its items, and its runs, read again every 2 s while one of
// them is queued or in progress.
import { getJSON, listAll } from '../api.js';
import {
  alertBox, definitions, formatNumber, formatTime, h, replace, replaceKeepingFocus, section, statusBadge, table,
} from '../dom.js';
import { criterionRule, evalPath, isLive, runHash, runProgress } from '../evals.js';

const REFRESH_MILLISECONDS = 2000;

function criteriaView(criteria) {
  return table('Testing criteria', [
    { label: 'Name', cell: (criterion) => criterion.name, class: 'wrap' },
    { label: 'Type', cell: (criterion) => h('code', {}, criterion.type) },
    { label: 'Passes when', cell: (criterion) => h('code', {}, criterionRule(criterion)), class: 'wrap' },
  ], criteria ?? [], { empty: 'No testing criteria.' });
}

function summaryView(item) {
  const config = item.data_source_config ?? {};
  const fields = Object.keys(config.schema?.properties?.item?.properties ?? {});
  const metadata = Object.entries(item.metadata ?? {});
  return definitions([
    ['Id', h('code', {}, item.id)],
    ['Created', formatTime(item.created_at)],
    ['Data source', config.type ?? '—'],
    ['Item fields', fields.length ? fields.map((name, index) => [index ? ', ' : '', h('code', {}, name)]) : '—'],
    item.fine_tuning_job_id
      ? ['Made by', ['the comparison of job ', h('a', { href: `#/jobs/${item.fine_tuning_job_id}` }, h('code', {}, item.fine_tuning_job_id))]]
      : null,
    metadata.length ? ['Metadata', metadata.map(([key, value]) => `${key}=${value}`).join(', ')] : null,
  ]);
}

function modelOf(run) {
  if (run.model) return h('code', {}, run.model);
  return h('span', { class: 'muted' }, run.data_source?.type === 'jsonl' ? 'samples given' : '—');
}

function runRows(evalId, runs) {
  return table('Runs, newest first', [
    {
      label: 'Run',
      cell: (run) => [h('a', { href: runHash(evalId, run.id) }, run.name || run.id),
        run.error?.message ? h('div', { class: 'warn-text' }, run.error.message) : null],
      class: 'wrap',
    },
    { label: 'Status', cell: (run) => statusBadge(run.status) },
    { label: 'Model', cell: modelOf, class: 'wrap' },
    { label: 'Passed', cell: (run) => formatNumber(run.result_counts?.passed ?? 0) },
    { label: 'Failed', cell: (run) => formatNumber(run.result_counts?.failed ?? 0) },
    { label: 'Errored', cell: (run) => formatNumber(run.result_counts?.errored ?? 0) },
    { label: 'Total', cell: (run) => formatNumber(run.result_counts?.total ?? 0) },
    { label: 'Progress', cell: runProgress },
    { label: 'Created', cell: (run) => formatTime(run.created_at) },
  ], runs, { empty: 'No runs yet. Start one with POST /v1/evals/{eval_id}/runs (the SDK\'s evals.runs.create).' });
}

export async function render(root, { params: [evalId], signal, every }) {
  const heading = h('h1', {}, 'Eval ', h('code', {}, evalId));
  const region = h('div', { 'aria-live': 'polite' });
  const live = h('span', { class: 'live-state', 'aria-live': 'polite' });
  const runs = h('div', { 'aria-live': 'off' });
  replace(root, heading, region);
  const item = await getJSON(evalPath(evalId), { signal });
  replace(heading, item.name || item.id);
  root.append(
    section('Summary', summaryView(item)),
    section('Testing criteria', criteriaView(item.testing_criteria)),
    section('Runs', live, runs),
  );

  let anyLive = true;
  let drawn = null;
  const refresh = async () => {
    const listed = await listAll(`${evalPath(evalId)}/runs`, { params: { order: 'desc' }, signal, max: 500 });
    anyLive = listed.some(isLive);
    const fingerprint = JSON.stringify(listed.map((run) => [run.id, run.status, run.result_counts, run.progress, run.error]));
    if (fingerprint !== drawn) replaceKeepingFocus(runs, runRows(evalId, listed));
    drawn = fingerprint;
    replace(live, anyLive ? 'live: following the runs' : '');
    live.dataset.state = anyLive ? 'open' : 'done';
    replace(region);
    runs.dataset.loaded = 'true';
  };
  every(REFRESH_MILLISECONDS, () => {
    if (!anyLive) return;
    refresh().catch((error) => {
      if (error.name !== 'AbortError' && !error.handled) replace(region, alertBox(error.message));
    });
  });
  await refresh();
}
