// Views shared by several pages: an estimate, resolved hyperparameters, a train/validation overlap report.
import { definitions, formatDuration, formatNumber, h, table } from './dom.js';

const ESTIMATE_LABELS = {
  training_examples: 'Training examples',
  training_tokens: 'Training tokens',
  validation_examples: 'Validation examples',
  validation_tokens: 'Validation tokens',
  too_long_examples: 'Examples over max_seq_length',
  total_steps: 'Steps',
  trained_tokens: 'Tokens to train on',
  estimated_seconds: 'Estimated GPU time',
  estimated_gpu_hours: 'Estimated GPU hours',
};

function plainValue(value) {
  if (Array.isArray(value)) return value.join(', ');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return formatNumber(value);
}

export function estimateView(estimate) {
  if (!estimate) return h('p', { class: 'empty' }, 'The estimate is made when the files are validated.');
  const known = Object.keys(ESTIMATE_LABELS).filter((name) => estimate[name] !== undefined && estimate[name] !== null);
  const pairs = known.map((name) => [
    ESTIMATE_LABELS[name],
    name === 'estimated_seconds' ? formatDuration(estimate[name]) : formatNumber(estimate[name]),
  ]);
  const overlap = estimate.validation_overlap ? overlapView(estimate.validation_overlap) : null;
  return h('div', { class: 'estimate' }, definitions(pairs), overlap);
}

export function hyperparametersView(values) {
  const names = Object.keys(values ?? {}).sort();
  if (!names.length) return h('p', { class: 'empty' }, 'Not resolved yet.');
  return definitions(names.map((name) => [h('code', {}, name), plainValue(values[name])]));
}

// Validation lines whose nearest training line is a near duplicate: validation loss would flatter the model.
export function overlapView(overlap, { heading = true } = {}) {
  const summary = overlap.count
    ? `${overlap.count} of ${overlap.validation_lines} validation examples are near-duplicates of training examples `
      + `(cosine ≥ ${overlap.threshold}); the validation loss will look better than it is.`
    : `No validation example is a near-duplicate of a training example (cosine ≥ ${overlap.threshold}).`;
  return h(
    'div',
    { class: 'overlap' },
    heading ? h('h3', {}, 'Train/validation overlap') : null,
    h('p', { class: overlap.count ? 'warn-text' : 'ok-text' }, summary),
    overlap.count
      ? table('Overlapping validation and training lines', [
        { label: 'Validation line', cell: (pair) => pair.validation_line },
        { label: 'Training line', cell: (pair) => pair.training_line },
        { label: 'Similarity', cell: (pair) => formatNumber(pair.score, 3) },
      ], overlap.pairs ?? [])
      : null,
  );
}
