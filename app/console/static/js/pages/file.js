// One file: its validation report, duplicate groups, train/validation overlap of the jobs that pair it,
// and semantic search over its examples.
import { ApiError, deleteJSON, download, enc, getJSON, listAll, query, request } from '../api.js';
import {
  alertBox, definitions, field, formatBytes, formatNumber, formatTime, guarded, h, replace, section, statusBadge, table,
} from '../dom.js';
import { overlapView } from '../views.js';

const EXCERPT_LIMIT_BYTES = 2 * 1024 * 1024; // files up to this size show the text of their duplicate lines
const INDEX_POLL_MILLISECONDS = 2000;

function validationView(file) {
  const stats = file.statistics ?? {};
  const verdict = file.status === 'processed'
    ? alertBox(`Every line is valid: ${stats.examples ?? 0} ${file.format ?? ''} examples in ${stats.lines ?? '?'} lines. `
      + 'A file with any bad line is refused at upload, with each bad line listed.', 'success')
    : alertBox(`Status ${file.status}${file.status_details ? `: ${file.status_details}` : ''}`, 'error');
  return [verdict, definitions([
    ['Format', file.format ?? '—'],
    ['Examples', formatNumber(stats.examples)],
    ['Messages', formatNumber(stats.messages)],
    ['Assistant messages', formatNumber(stats.assistant_messages)],
    ['Characters', formatNumber(stats.characters)],
    ['Longest example (characters)', formatNumber(stats.max_example_characters)],
    ['Lines', formatNumber(stats.lines)],
    ['Blank lines', formatNumber(stats.blank_lines)],
    ['Invalid lines', formatNumber(stats.invalid_lines)],
  ])];
}

// A line as a person reads it: the conversation's turns, not its JSON.
function readable(text) {
  try {
    const example = JSON.parse(text);
    const turns = example.messages ?? [...(example.input?.messages ?? []), ...(example.preferred_output ?? [])];
    const shown = turns.filter((turn) => turn.role !== 'system' && typeof turn.content === 'string');
    if (shown.length) return shown.map((turn) => `${turn.role}: ${turn.content}`).join(' · ');
  } catch {
    // not JSON: shown as it is
  }
  return text;
}

function excerpt(lines, number) {
  const text = lines?.[number - 1];
  if (text === undefined) return null;
  const shown = readable(text);
  return h('span', { class: 'excerpt' }, shown.length > 160 ? `${shown.slice(0, 160)}…` : shown);
}

function groupsView(title, groups, lines) {
  if (!groups.length) return null;
  return [h('h3', {}, title), table(title, [
    { label: 'Lines', cell: (group) => group.join(', ') },
    { label: 'Count', cell: (group) => group.length },
    { label: 'First line', cell: (group) => excerpt(lines, group[0]) ?? '—', class: 'wrap' },
  ], groups)];
}

function duplicatesView(answer, lines) {
  if (answer.index_status !== 'indexed' || !answer.report) {
    const failed = answer.index_status === 'failed';
    return alertBox(failed ? 'Indexing failed: no duplicate report.' : `Indexing the examples (${answer.index_status})…`,
      failed ? 'error' : 'info');
  }
  const { counts, exact, near, threshold } = answer.report;
  return [
    definitions([
      ['Indexed lines', formatNumber(counts.lines)],
      ['Exact duplicate lines', formatNumber(counts.exact_duplicate_lines)],
      ['Near-duplicate lines', `${formatNumber(counts.near_duplicate_lines)} (cosine ≥ ${threshold})`],
    ]),
    !exact.length && !near.length ? h('p', { class: 'ok-text' }, 'No duplicates found.') : null,
    groupsView('Exact duplicates', exact, lines),
    groupsView('Near duplicates', near, lines),
  ];
}

function fileLink(id, current) {
  return id === current ? h('code', {}, `${id} (this file)`) : h('a', { href: `#/files/${id}` }, h('code', {}, id));
}

async function overlapsView(fileId, signal) {
  const jobs = (await listAll('/v1/fine_tuning/jobs', { signal, max: 500 }))
    .filter((job) => job.validation_file && (job.training_file === fileId || job.validation_file === fileId));
  if (!jobs.length) {
    return h('p', { class: 'empty' }, 'Overlap is measured when a job uses this file with another as training and '
      + 'validation files; no job does yet.');
  }
  return jobs.map((job) => h('div', { class: 'overlap-job' },
    h('h3', {}, 'Job ', h('a', { href: `#/jobs/${job.id}` }, h('code', {}, job.id))),
    h('p', { class: 'muted' }, 'Training ', fileLink(job.training_file, fileId), ' · validation ', fileLink(job.validation_file, fileId)),
    job.estimate?.validation_overlap ? overlapView(job.estimate.validation_overlap, { heading: false })
      : h('p', { class: 'empty' }, 'Not measured yet (the job has not finished validating its files).')));
}

function searchForm(fileId, signal) {
  const input = h('input', { type: 'search', name: 'q', required: true, maxlength: '2000', placeholder: 'e.g. refund policy' });
  const results = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'search', role: 'search', method: 'post', novalidate: true },
    field('Search the examples by meaning', input), h('button', { type: 'submit', class: 'button-primary' }, 'Search'));
  form.addEventListener('submit', guarded(results, async () => {
    if (!input.value.trim()) return;
    const answer = await getJSON(`/v1/files/${enc(fileId)}/search${query({ q: input.value.trim(), limit: 10 })}`, { signal });
    replace(results, table(`Examples nearest to “${answer.query}”`, [
      { label: 'Line', cell: (hit) => hit.line },
      { label: 'Score', cell: (hit) => formatNumber(hit.score, 3) },
      { label: 'Example', cell: (hit) => hit.text, class: 'wrap' },
    ], answer.data, { empty: 'No example matched.' }));
  }));
  return [form, results];
}

async function fileLines(file, signal) {
  if (file.bytes > EXCERPT_LIMIT_BYTES) return null;
  const text = await (await request(`/v1/files/${enc(file.id)}/content`, { headers: { Accept: '*/*' }, signal })).text();
  return text.split('\n');
}

export async function render(root, { params: [fileId], signal, every, navigate }) {
  const heading = h('h1', {}, 'File ', h('code', {}, fileId));
  const region = h('div', { 'aria-live': 'polite' });
  replace(root, heading, region);
  const file = await getJSON(`/v1/files/${enc(fileId)}`, { signal });
  replace(heading, file.filename);
  const downloadButton = h('button', { type: 'button', class: 'button-quiet' }, 'Download');
  downloadButton.addEventListener('click', guarded(region, () => download(`/v1/files/${enc(fileId)}/content`, file.filename, { signal })));
  const deleteButton = h('button', { type: 'button', class: 'button-danger' }, 'Delete file');
  deleteButton.addEventListener('click', guarded(region, async () => {
    if (!window.confirm(`Delete ${file.filename} (${file.id})? Jobs keep their results; the file cannot be used again.`)) return;
    await deleteJSON(`/v1/files/${enc(fileId)}`, { signal });
    navigate('#/files');
  }));
  const duplicates = h('div', { 'aria-live': 'polite' });
  const overlaps = h('div');
  root.append(
    section('Summary', definitions([
      ['Id', h('code', {}, file.id)], ['Status', statusBadge(file.status)], ['Size', formatBytes(file.bytes)],
      ['Created', formatTime(file.created_at)], ['Purpose', file.purpose],
    ]), h('div', { class: 'actions' }, downloadButton, deleteButton)),
    section('Validation report', validationView(file)),
    section('Duplicates', duplicates),
    section('Train/validation overlap', overlaps),
    section('Semantic search', searchForm(fileId, signal)),
  );
  const lines = await fileLines(file, signal).catch((error) => {
    if (error instanceof ApiError) return null;
    throw error;
  });
  let indexed = false;
  const refreshDuplicates = async () => {
    if (indexed) return;
    const answer = await getJSON(`/v1/files/${enc(fileId)}/duplicates`, { signal });
    indexed = answer.index_status === 'indexed' || answer.index_status === 'failed';
    replace(duplicates, duplicatesView(answer, lines));
  };
  every(INDEX_POLL_MILLISECONDS, () => refreshDuplicates().catch((error) => {
    if (error.name !== 'AbortError' && !error.handled) replace(region, alertBox(error.message));
  }));
  await Promise.all([refreshDuplicates(), overlapsView(fileId, signal).then((view) => replace(overlaps, view))]);
}
