// One job: live loss and accuracy curves from its event stream, events, checkpoints, estimate, controls.
import { download, enc, getJSON, listAll, postJSON } from '../api.js';
import { MetricChart } from '../chart.js';
import {
  alertBox, definitions, formatNumber, formatTime, guarded, h, progressBar, replace, replaceKeepingFocus, section,
  statusBadge, table,
} from '../dom.js';
import { comparisonView } from '../evals.js';
import { followEvents } from '../sse.js';
import { estimateView, hyperparametersView } from '../views.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const EVENTS_SHOWN = 200;
const REFRESH_MILLISECONDS = 2000;
const COMPARISON_POLL_TICKS = 3; // the job is read again every 3rd tick while its comparison is awaited
const COMPARISON_WAIT_SECONDS = 600; // how long after the job's end a comparison that has not started is awaited

const LOSS_SERIES = [
  { key: 'train_loss', label: 'Training loss', color: '#2563eb' },
  { key: 'valid_loss', label: 'Validation loss', color: '#ea580c', sparse: true },
];
const ACCURACY_SERIES = [
  { key: 'train_mean_token_accuracy', label: 'Training token accuracy', color: '#059669' },
  { key: 'valid_mean_token_accuracy', label: 'Validation token accuracy', color: '#9333ea', sparse: true },
];

// Which controls a status offers; the API decides (a refused action answers 409 with the reason).
function controlsFor(status) {
  return {
    cancel: !TERMINAL.has(status),
    pause: status === 'queued' || status === 'running',
    resume: status === 'paused',
  };
}

function summaryView(job, progress) {
  const hyper = job.method?.[job.method?.type]?.hyperparameters ?? {};
  return definitions([
    ['Status', statusBadge(job.status)],
    ['Progress', progress],
    ['Base model', h('code', {}, job.model)],
    ['Fine-tuned model', job.fine_tuned_model ? h('a', { href: '#/models' }, h('code', {}, job.fine_tuned_model)) : '—'],
    ['Method', `${job.method?.type ?? 'supervised'}${hyper.fine_tune_type ? ` · ${hyper.fine_tune_type}` : ''}`],
    ['Training file', h('a', { href: `#/files/${job.training_file}` }, h('code', {}, job.training_file))],
    ['Validation file', job.validation_file ? h('a', { href: `#/files/${job.validation_file}` }, h('code', {}, job.validation_file)) : '—'],
    ['Created', formatTime(job.created_at)],
    job.finished_at ? ['Finished', formatTime(job.finished_at)] : ['Estimated finish', formatTime(job.estimated_finish)],
    ['Trained tokens', formatNumber(job.trained_tokens)],
    job.progress?.attempt > 1 ? ['Attempt', job.progress.attempt] : null,
    job.user_provided_suffix ? ['Suffix', job.user_provided_suffix] : null,
  ]);
}

function eventRows(events) {
  return table('Job events, newest first', [
    { label: 'Time', cell: (event) => formatTime(event.created_at) },
    { label: 'Level', cell: (event) => h('span', { class: `level level-${event.level}` }, event.level) },
    { label: 'Message', cell: (event) => event.message, class: 'wrap' },
  ], events, { empty: 'No events yet.' });
}

class JobPage {
  constructor(root, jobId, signal) {
    this.jobId = jobId;
    this.signal = signal;
    this.job = null;
    this.messages = [];
    this.metricEvents = [];
    this.region = h('div', { 'aria-live': 'polite' });
    this.controls = h('div', { class: 'actions' });
    this.summary = h('div');
    this.comparison = h('div', { 'aria-live': 'polite' });
    this.comparisonPanel = section('Fine-tune vs base', this.comparison);
    this.comparisonPanel.hidden = true;
    this.ticks = 0;
    this.progress = h('span', { class: 'progress-cell' });
    this.live = h('span', { class: 'live-state', 'aria-live': 'polite' }, 'connecting…');
    this.latest = h('p', { class: 'latest', 'aria-live': 'off' });
    this.lossBox = h('div', { id: 'loss-chart' });
    this.accuracyBox = h('div', { id: 'accuracy-chart' });
    this.accuracyPanel = h('div', { hidden: true }, h('h3', {}, 'Token accuracy'), this.accuracyBox);
    this.estimate = h('div');
    this.hyperparameters = h('div');
    this.checkpoints = h('div');
    this.results = h('div');
    this.events = h('div');
    this.showMetrics = h('input', { type: 'checkbox', id: 'show-metric-events' });
    this.showMetrics.addEventListener('change', () => this.drawEvents());
    replace(
      root,
      h('div', { class: 'page-head' }, h('h1', {}, 'Job ', h('code', {}, jobId)), this.controls),
      this.region,
      section('Summary', this.summary),
      this.comparisonPanel,
      section('Training curves', h('div', { class: 'chart-head' }, this.latest, this.live),
        h('h3', {}, 'Loss'), this.lossBox, this.accuracyPanel),
      h('div', { class: 'columns' }, section('Estimate', this.estimate), section('Hyperparameters', this.hyperparameters)),
      section('Checkpoints', this.checkpoints),
      section('Result files', this.results),
      section('Events', h('div', { class: 'inline-field' }, this.showMetrics,
        h('label', { for: 'show-metric-events' }, 'Show per-step metric events')), this.events),
    );
    this.loss = new MetricChart(this.lossBox, { label: 'Training and validation loss against steps', series: LOSS_SERIES, yLabel: 'loss' });
    this.accuracy = new MetricChart(this.accuracyBox, { label: 'Token accuracy against steps', series: ACCURACY_SERIES, yLabel: 'accuracy', range: [0, 1] });
    this.loss.onDraw = () => this.drawLatest();
    signal.addEventListener('abort', () => {
      this.loss.destroy();
      this.accuracy.destroy();
    }, { once: true });
  }

  async load() {
    await Promise.all([this.refreshJob(), this.refreshCheckpoints()]);
  }

  async refreshJob() {
    this.job = await getJSON(`/v1/fine_tuning/jobs/${enc(this.jobId)}`, { signal: this.signal });
    const job = this.job;
    this.drawProgress();
    replaceKeepingFocus(this.summary, summaryView(job, this.progress), job.error
      ? alertBox(`${job.error.code}: ${job.error.message}`) : null);
    replace(this.estimate, estimateView(job.estimate));
    replace(this.hyperparameters, hyperparametersView(job.method?.[job.method?.type]?.hyperparameters));
    this.comparisonPanel.hidden = !job.comparison;
    if (job.comparison) replaceKeepingFocus(this.comparison, comparisonView(job.comparison));
    this.drawControls();
    this.drawResults();
  }

  drawControls() {
    const allowed = controlsFor(this.job.status);
    const button = (action, label, style) => {
      const element = h('button', { type: 'button', class: style, disabled: !allowed[action], dataset: { focusKey: action } }, label);
      element.addEventListener('click', guarded(this.region, async () => {
        if (action === 'cancel' && !window.confirm(`Cancel ${this.jobId}? A running job saves a checkpoint first.`)) return;
        await postJSON(`/v1/fine_tuning/jobs/${enc(this.jobId)}/${action}`, {}, { signal: this.signal });
        await this.refreshJob();
      }));
      return element;
    };
    replaceKeepingFocus(this.controls, button('pause', 'Pause', 'button-quiet'), button('resume', 'Resume', 'button-quiet'),
      button('cancel', 'Cancel job', 'button-danger'));
  }

  drawResults() {
    const files = this.job.result_files ?? [];
    replaceKeepingFocus(this.results, files.length
      ? h('ul', { class: 'plain' }, files.map((id) => h('li', {}, h('code', {}, id), ' ', this.downloadButton(
        `Download metrics CSV`, `/v1/files/${enc(id)}/content`, `${id}.csv`))))
      : h('p', { class: 'empty' }, 'The metrics file appears when the job succeeds.'));
  }

  downloadButton(label, path, name) {
    const element = h('button', { type: 'button', class: 'button-quiet', dataset: { focusKey: path } }, label);
    element.addEventListener('click', guarded(this.region, () => download(path, name, { signal: this.signal })));
    return element;
  }

  async refreshCheckpoints() {
    const checkpoints = await listAll(`/v1/fine_tuning/jobs/${enc(this.jobId)}/checkpoints`, { signal: this.signal });
    replaceKeepingFocus(this.checkpoints, table('Checkpoints, newest first', [
      { label: 'Step', cell: (item) => item.step_number },
      { label: 'Saved', cell: (item) => formatTime(item.created_at) },
      { label: 'Training loss', cell: (item) => formatNumber(item.metrics?.train_loss) },
      { label: 'Validation loss', cell: (item) => formatNumber(item.metrics?.valid_loss) },
      { label: 'Name', cell: (item) => h('code', {}, item.fine_tuned_model_checkpoint), class: 'wrap' },
      { label: 'Download', cell: (item) => this.downloadButton(`Download step ${item.step_number}`,
        `/v1/fine_tuning/jobs/${enc(this.jobId)}/checkpoints/${enc(item.id)}/download`, `${this.jobId}-step-${item.step_number}.tar`) },
    ], checkpoints, { empty: 'No checkpoint saved yet.' }));
  }

  // One event of the stream: metrics feed the charts, everything else the events list.
  take(event) {
    const data = event.data ?? {};
    if (event.type === 'metrics' && typeof data.step === 'number') {
      this.loss.add(data.step, data);
      this.accuracy.add(data.step, data);
      if (this.accuracy.hasValues()) this.accuracyPanel.hidden = false;
      if (data.total_steps && this.job) this.job.progress = { ...this.job.progress, step: data.step, total_steps: data.total_steps };
      this.metricEvents.push(event);
      if (this.metricEvents.length > EVENTS_SHOWN) this.metricEvents.splice(0, this.metricEvents.length - EVENTS_SHOWN);
    } else {
      this.messages.push(event);
      this.changed = true;
      if (data.path_name) this.checkpointSaved = true;
    }
    this.eventsDirty = true;
  }

  drawLatest() {
    const train = this.loss.latest('train_loss');
    const valid = this.loss.latest('valid_loss');
    replace(this.latest, train ? `Step ${train.step}: training loss ${formatNumber(train.value)}` : 'No training step yet.',
      valid ? ` · validation loss ${formatNumber(valid.value)} (step ${valid.step})` : '');
    this.drawProgress();
  }

  drawProgress() {
    if (this.job) replace(this.progress, progressBar(this.job.progress?.step, this.job.progress?.total_steps));
  }

  drawEvents() {
    this.eventsDirty = false;
    const shown = this.showMetrics.checked ? [...this.messages, ...this.metricEvents] : this.messages;
    const newest = shown.slice().sort((left, right) => (left.id < right.id ? 1 : -1)).slice(0, EVENTS_SHOWN);
    replace(this.events, eventRows(newest));
  }

  // A job with a validation file is compared with its base model after it succeeds, when its event stream
  // has already ended: until the comparison's result is written, the job is read again now and then.
  awaitingComparison() {
    const { job } = this;
    if (!job || job.status !== 'succeeded' || !job.validation_file) return false;
    if (job.comparison) return job.comparison.status === 'running';
    return Date.now() / 1000 - (job.finished_at ?? 0) < COMPARISON_WAIT_SECONDS;
  }

  // Between stream events: redraw the events list and re-read what they changed, at most every 2 s.
  async tick() {
    this.ticks += 1;
    if (this.awaitingComparison() && this.ticks % COMPARISON_POLL_TICKS === 0) this.changed = true;
    if (this.eventsDirty) this.drawEvents();
    if (this.changed) {
      this.changed = false;
      await this.refreshJob();
    }
    if (this.checkpointSaved) {
      this.checkpointSaved = false;
      await this.refreshCheckpoints();
    }
  }

  async follow() {
    await followEvents(`/v1/fine_tuning/jobs/${enc(this.jobId)}/events?stream=true`, {
      signal: this.signal,
      onEvent: (message) => {
        if (message.type === 'event') this.take(JSON.parse(message.data));
      },
      onState: (state) => {
        const words = { open: 'live', reconnecting: 'reconnecting…', done: 'finished' };
        replace(this.live, words[state] ?? state);
        this.live.dataset.state = state;
      },
    });
    this.changed = true;
    this.checkpointSaved = true;
    await this.tick();
  }
}

export async function render(root, { params: [jobId], signal, every }) {
  const page = new JobPage(root, jobId, signal);
  await page.load();
  every(REFRESH_MILLISECONDS, () => page.tick().catch((error) => {
    if (error.name !== 'AbortError' && !error.handled) replace(page.region, alertBox(error.message));
  }));
  page.follow().catch((error) => {
    if (error.name !== 'AbortError' && !error.handled) replace(page.region, alertBox(error.message));
  });
}
