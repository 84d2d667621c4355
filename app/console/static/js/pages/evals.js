// Evals: each eval's name, testing criteria and creation time, newest first (they are made with the API or
// the SDK, and by a job's comparison with its base model).
import { listAll } from '../api.js';
import { formatTime, h, replace, table } from '../dom.js';
import { evalHash } from '../evals.js';

function evalRows(evals) {
  return table('Evals, newest first', [
    { label: 'Name', cell: (item) => h('a', { href: evalHash(item.id) }, item.name || item.id), class: 'wrap' },
    { label: 'Id', cell: (item) => h('code', {}, item.id) },
    { label: 'Criteria', cell: (item) => (item.testing_criteria ?? []).length },
    { label: 'Job', cell: (item) => (item.fine_tuning_job_id
      ? h('a', { href: `#/jobs/${item.fine_tuning_job_id}` }, h('code', {}, item.fine_tuning_job_id)) : '—') },
    { label: 'Created', cell: (item) => formatTime(item.created_at) },
  ], evals, { empty: 'No evals yet. Create one with the API (POST /v1/evals) or the SDK; a job with a validation '
    + 'file makes one when it succeeds.' });
}

export async function render(root, { signal }) {
  const list = h('div');
  replace(root, h('h1', {}, 'Evals'), h('p', { class: 'lede' }, 'Each eval grades the items of its runs with its '
    + 'testing criteria; open one for its runs, and a run for each item\'s grades.'), list);
  replace(list, evalRows(await listAll('/v1/evals', { params: { order: 'desc' }, signal, max: 500 })));
  list.dataset.loaded = 'true';
}
