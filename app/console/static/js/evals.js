// What the evals pages and the job page share: links to evals and runs, a run's counts and progress, the
// fine-tune vs base comparison that a job's validation file produces.
import { enc } from './api.js';
import { alertBox, definitions, formatNumber, h, progressBar, statusBadge, table } from './dom.js';

// The API's own words for a run that may still change (queued or in progress).
const LIVE = new Set(['queued', 'in_progress']);

export function isLive(run) {
  return LIVE.has(run.status);
}

export function evalHash(evalId) {
  return `#/evals/${enc(evalId)}`;
}

// The run's page: the same route as the run's `report_url`.
export function runHash(evalId, runId) {
  return `#/evals/${enc(evalId)}/runs/${enc(runId)}`;
}

export function evalPath(evalId) {
  return `/v1/evals/${enc(evalId)}`;
}

export function runPath(evalId, runId) {
  return `${evalPath(evalId)}/runs/${enc(runId)}`;
}

// Items graded of the items the run holds (a cancelled run keeps the ones graded before it stopped).
export function runProgress(run) {
  return progressBar(run.progress?.stored_items ?? 0, run.progress?.total_items, 'items');
}

export function countsView(counts) {
  return definitions([
    ['Passed', h('span', { class: 'ok-text' }, formatNumber(counts?.passed ?? 0))],
    ['Failed', h('span', { class: counts?.failed ? 'warn-text' : null }, formatNumber(counts?.failed ?? 0))],
    ['Errored', formatNumber(counts?.errored ?? 0)],
    ['Total', formatNumber(counts?.total ?? 0)],
  ]);
}

function percent(passed, total) {
  return total ? `${Math.round((100 * passed) / total)} %` : '—';
}

// One line per grader of the eval, as a person would say what it checks.
export function criterionRule(criterion) {
  switch (criterion.type) {
    case 'string_check':
      return `${criterion.input} ${criterion.operation} ${criterion.reference}`;
    case 'text_similarity':
      return `${criterion.evaluation_metric}(${criterion.input}, ${criterion.reference}) ≥ ${criterion.pass_threshold}`;
    case 'score_model':
      return `${criterion.model} scores in [${(criterion.range ?? []).join(', ')}], passes at ≥ ${criterion.pass_threshold}`;
    case 'label_model':
      return `${criterion.model} labels ${(criterion.labels ?? []).join(' / ')}, passes on ${(criterion.passing_labels ?? []).join(' / ')}`;
    case 'multi':
      return `${criterion.calculate_output} over ${Object.keys(criterion.graders ?? {}).join(', ')}, passes at ≥ ${criterion.pass_threshold}`;
    default:
      return JSON.stringify(criterion);
  }
}

// OpenAI names a criterion's totals by the criterion's id (`<name>-<uuid>`); this shows its name.
export function criteriaResultsView(results, criteria) {
  const names = new Map((criteria ?? []).map((criterion) => [criterion.id, criterion.name]));
  return table('Results per testing criterion', [
    { label: 'Criterion', cell: (result) => names.get(result.testing_criteria) ?? result.testing_criteria, class: 'wrap' },
    { label: 'Passed', cell: (result) => formatNumber(result.passed) },
    { label: 'Failed', cell: (result) => formatNumber(result.failed) },
    { label: 'Pass rate', cell: (result) => percent(result.passed, result.passed + result.failed) },
  ], results ?? [], { empty: 'No item graded yet.' });
}

function sideLink(comparison, side) {
  const runId = side.run_id;
  if (!runId || !comparison.eval_id) return '—';
  return h('a', { href: runHash(comparison.eval_id, runId) }, 'Open the run');
}

// The job's `comparison`: its fine-tuned model and its base, both run on the job's validation file.
export function comparisonView(comparison) {
  if (comparison.status === 'skipped') {
    return alertBox(`No comparison with the base model: ${comparison.reason ?? 'skipped'}`, 'info');
  }
  const evalLink = comparison.eval_id
    ? h('p', {}, h('a', { href: evalHash(comparison.eval_id) }, 'Open the eval'), ' ', h('code', {}, comparison.eval_id))
    : null;
  if (comparison.status === 'running') {
    return [alertBox('Both models are answering the validation file; the result appears here when both runs end.', 'info'),
      evalLink];
  }
  const tuned = comparison.fine_tuned ?? {};
  const base = comparison.base ?? {};
  const verdict = comparison.passed
    ? alertBox(`Passed: the fine-tune passed ${tuned.passed}/${tuned.total} items, its base ${base.passed}/${base.total}.`,
      'success')
    : alertBox(`Not passed: the fine-tune passed ${tuned.passed}/${tuned.total} items, its base ${base.passed}/${base.total}`
      + `${comparison.status === 'completed' ? '.' : ' (a run did not complete).'}`, 'error');
  const loss = comparison.validation_loss;
  return [
    verdict,
    table('The fine-tuned model and its base on the validation file', [
      { label: 'Side', cell: (row) => row.label },
      { label: 'Model', cell: (row) => h('code', {}, row.side.model ?? '—'), class: 'wrap' },
      { label: 'Run', cell: (row) => statusBadge(row.side.status) },
      { label: 'Passed', cell: (row) => `${formatNumber(row.side.passed ?? 0)}/${formatNumber(row.side.total ?? 0)}` },
      { label: 'Pass rate', cell: (row) => percent(row.side.passed ?? 0, row.side.total ?? 0) },
      { label: 'Items', cell: (row) => sideLink(comparison, row.side) },
    ], [{ label: 'Fine-tuned', side: tuned }, { label: 'Base', side: base }]),
    loss ? h('p', { class: 'muted' }, `Validation loss ${formatNumber(loss.first)} at step ${loss.first_step}, `
      + `${formatNumber(loss.last)} at step ${loss.last_step}.`) : null,
    evalLink,
  ];
}
