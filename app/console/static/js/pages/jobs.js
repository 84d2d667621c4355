// The jobs list: status, model, progress and creation time, refreshed every few seconds while shown.
import { getJSON, query } from '../api.js';
import { alertBox, formatTime, guarded, h, progressBar, replace, replaceKeepingFocus, statusBadge, table } from '../dom.js';

const PAGE_SIZE = 20;
const REFRESH_MILLISECONDS = 3000;

function jobRows(jobs) {
  return table(
    'Fine-tuning jobs, newest first',
    [
      { label: 'Job', cell: (job) => h('a', { href: `#/jobs/${job.id}` }, h('code', {}, job.id)) },
      { label: 'Status', cell: (job) => statusBadge(job.status) },
      { label: 'Model', cell: (job) => job.fine_tuned_model ?? job.model, class: 'wrap' },
      { label: 'Progress', cell: (job) => progressBar(job.progress?.step, job.progress?.total_steps) },
      { label: 'Created', cell: (job) => formatTime(job.created_at) },
    ],
    jobs,
    { empty: 'No jobs yet. Create one to fine-tune a model on your data.' },
  );
}

export async function render(root, { signal, every }) {
  const list = h('div', { 'aria-live': 'off' });
  const region = h('div', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'button-quiet', hidden: true }, 'Load older jobs');
  replace(
    root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'), h('a', { class: 'button button-primary', href: '#/jobs/new' }, 'New job')),
    region,
    list,
    more,
  );
  let shown = PAGE_SIZE;
  let hasMore = false;
  let drawn = null;

  // The first `shown` jobs, read again on each refresh, so statuses and progress stay live.
  const refresh = async () => {
    const jobs = [];
    let after = null;
    do {
      const page = await getJSON(`/v1/fine_tuning/jobs${query({ limit: Math.min(100, shown - jobs.length), after })}`, { signal });
      jobs.push(...page.data);
      hasMore = page.has_more;
      after = page.data.at(-1)?.id;
    } while (hasMore && jobs.length < shown && after);
    const fingerprint = JSON.stringify(jobs.map((job) => [job.id, job.status, job.progress, job.fine_tuned_model]));
    if (fingerprint !== drawn) replaceKeepingFocus(list, jobRows(jobs));
    drawn = fingerprint;
    replace(region);
    more.hidden = !hasMore;
    list.dataset.loaded = 'true';
  };
  more.addEventListener('click', guarded(region, async () => {
    shown += PAGE_SIZE;
    await refresh();
  }));
  every(REFRESH_MILLISECONDS, () => refresh().catch((error) => {
    if (error.name !== 'AbortError' && !error.handled) replace(region, alertBox(error.message));
  }));
  await refresh();
}
