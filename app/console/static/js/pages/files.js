// Files: upload a JSONL dataset (a rejected one shows every bad line), and the files already stored.
import { ApiError, listAll, request } from '../api.js';
import { alertBox, field, formatBytes, formatTime, guarded, h, replace, section, statusBadge, table } from '../dom.js';

// The API refuses a file with any bad line and stores nothing; its answer lists each line's problem.
export function rejectionView(error, filename) {
  const problems = error.details?.errors ?? [];
  const count = error.details?.error_count ?? problems.length;
  return h(
    'div',
    { class: 'rejection', role: 'alert' },
    h('h3', {}, `${filename} was rejected: ${count} problem${count === 1 ? '' : 's'}`),
    h('p', {}, 'Nothing was stored. Fix these lines and upload the file again.'),
    count > problems.length ? h('p', { class: 'muted' }, `The first ${problems.length} problems are listed.`) : null,
    table(`Problems of ${filename}`, [
      { label: 'Line', cell: (problem) => (problem.line ? problem.line : 'file') },
      { label: 'Code', cell: (problem) => h('code', {}, problem.code) },
      { label: 'Field', cell: (problem) => (problem.param ? h('code', {}, problem.param) : '—') },
      { label: 'Message', cell: (problem) => problem.message, class: 'wrap' },
    ], problems),
  );
}

function fileRows(files) {
  return table('Files, newest first', [
    { label: 'File', cell: (file) => h('a', { href: `#/files/${file.id}` }, file.filename), class: 'wrap' },
    { label: 'Id', cell: (file) => h('code', {}, file.id) },
    { label: 'Status', cell: (file) => statusBadge(file.status) },
    { label: 'Format', cell: (file) => file.format ?? '—' },
    { label: 'Examples', cell: (file) => file.statistics?.examples ?? '—' },
    { label: 'Size', cell: (file) => formatBytes(file.bytes) },
    { label: 'Indexed', cell: (file) => file.index_status ?? '—' },
    { label: 'Created', cell: (file) => formatTime(file.created_at) },
  ], files, { empty: 'No files yet. Upload a JSONL file of chat or preference examples.' });
}

export async function render(root, { signal }) {
  const input = h('input', { type: 'file', name: 'file', accept: '.jsonl,application/jsonl,application/x-ndjson', required: true });
  const region = h('div', { 'aria-live': 'polite' });
  const list = h('div');
  const form = h('form', { class: 'upload', method: 'post', novalidate: true },
    field('Dataset (JSONL)', input, 'Chat SFT ({"messages": [...]}) or DPO preference lines; every bad line is reported.'),
    h('button', { type: 'submit', class: 'button-primary' }, 'Upload'));
  replace(root, h('h1', {}, 'Files'), section('Upload', form, region), section('Stored files', list));

  const refresh = async () => replace(list, fileRows(await listAll('/v1/files', { signal })));
  form.addEventListener('submit', guarded(region, async () => {
    const file = input.files?.[0];
    if (!file) {
      replace(region, alertBox('Choose a file to upload.'));
      return;
    }
    const body = new FormData();
    body.append('purpose', 'fine-tune');
    body.append('file', file, file.name);
    replace(region, alertBox(`Uploading and validating ${file.name}…`, 'info'));
    try {
      const stored = await (await request('/v1/files', { method: 'POST', form: body, signal })).json();
      replace(region, alertBox(h('span', {}, `${stored.filename} was accepted: ${stored.statistics?.examples ?? 0} examples. `,
        h('a', { href: `#/files/${stored.id}` }, 'Open its report')), 'success'));
      form.reset();
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && error.details?.errors) replace(region, rejectionView(error, file.name));
      else throw error;
    }
  }));
  await refresh();
}
