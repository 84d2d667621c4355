// Models: the base models open for fine-tuning and the fine-tuned ones, with their files and downloads.
import { deleteJSON, download, enc, getJSON, query } from '../api.js';
import { formatBytes, formatTime, guarded, h, replace, section, table } from '../dom.js';

// A model id (`ft:base:org:suffix:job`) goes in the path as it is: the API's route takes the whole rest of it.
function modelPath(id) {
  return id.split('/').map(enc).join('/');
}

function playgroundLink(model) {
  return h('a', { href: `#/playground/${enc(model.id)}`, class: 'button button-quiet' }, 'Open in playground');
}

function manifestView(model, kind, listing, region, signal) {
  return table(`Files of the ${kind} of ${model.id}`, [
    { label: 'Path', cell: (item) => h('code', {}, item.path), class: 'wrap' },
    { label: 'Size', cell: (item) => formatBytes(item.bytes) },
    { label: 'SHA-256', cell: (item) => h('code', { class: 'digest' }, item.sha256), class: 'wrap' },
    {
      label: 'Download',
      cell: (item) => {
        const button = h('button', { type: 'button', class: 'button-quiet' }, `Download ${item.path}`);
        button.addEventListener('click', guarded(region, () => download(
          `/v1/models/${modelPath(model.id)}/file${query({ kind, path: item.path })}`, item.path.split('/').at(-1), { signal })));
        return button;
      },
    },
  ], listing.data, { empty: 'No files.' });
}

function fineTunedCard(model, region, signal, refresh) {
  const files = h('div');
  const actions = h('div', { class: 'actions' });
  for (const kind of model.artifacts ?? []) {
    const archive = h('button', { type: 'button', class: 'button-primary' }, `Download ${kind} (.tar)`);
    archive.addEventListener('click', guarded(region, () => download(
      `/v1/models/${modelPath(model.id)}/download${query({ kind })}`, `${model.job_id}-${kind}.tar`, { signal })));
    const list = h('button', { type: 'button', class: 'button-quiet', 'aria-expanded': 'false' }, `List ${kind} files`);
    list.addEventListener('click', guarded(region, async () => {
      const listing = await getJSON(`/v1/models/${modelPath(model.id)}/files${query({ kind })}`, { signal });
      replace(files, h('h4', {}, `${kind} files`), manifestView(model, kind, listing, region, signal));
      list.setAttribute('aria-expanded', 'true');
    }));
    actions.append(archive, list);
  }
  const remove = h('button', { type: 'button', class: 'button-danger' }, 'Delete model');
  remove.addEventListener('click', guarded(region, async () => {
    if (!window.confirm(`Delete ${model.id} and its weights? This cannot be undone.`)) return;
    await deleteJSON(`/v1/models/${modelPath(model.id)}`, { signal });
    await refresh();
  }));
  actions.append(playgroundLink(model), remove);
  return h('article', { class: 'card model' },
    h('h3', {}, h('code', {}, model.id)),
    h('p', { class: 'muted' }, `From base model ${model.parent} · job `, h('a', { href: `#/jobs/${model.job_id}` }, model.job_id),
      ` · created `, formatTime(model.created), model.registry?.version ? ` · registry ${model.registry.name} v${model.registry.version}` : ''),
    actions, files);
}

export async function render(root, { signal }) {
  const region = h('div', { 'aria-live': 'polite' });
  const base = h('div');
  const tuned = h('div');
  replace(root, h('h1', {}, 'Models'), region, section('Fine-tuned models', tuned), section('Base models', base));
  const refresh = async () => {
    const models = (await getJSON('/v1/models', { signal })).data;
    const fineTuned = models.filter((model) => model.parent);
    replace(tuned, fineTuned.length ? fineTuned.map((model) => fineTunedCard(model, region, signal, refresh))
      : h('p', { class: 'empty' }, 'No fine-tuned model yet: a job that succeeds adds one.'));
    replace(base, table('Base models open for fine-tuning', [
      { label: 'Model', cell: (model) => h('code', {}, model.id) },
      { label: 'Owned by', cell: (model) => model.owned_by },
      { label: 'Added', cell: (model) => formatTime(model.created) },
      { label: 'Chat', cell: (model) => playgroundLink(model) },
    ], models.filter((model) => !model.parent), { empty: 'No base model is open for fine-tuning yet.' }));
  };
  await refresh();
}
