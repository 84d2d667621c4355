// A new job: the form's request is estimated first (tokens, steps, GPU time, resolved hyperparameters),
// and the same request is sent to create the job only once its estimate is on screen.
import { getJSON, listAll, postJSON } from '../api.js';
import { alertBox, field, formatBytes, guarded, h, replace, section } from '../dom.js';
import { estimateView, hyperparametersView } from '../views.js';

const NUMBER_FIELDS = [
  { name: 'n_epochs', label: 'Epochs', step: '1', min: '1', placeholder: 'auto' },
  { name: 'batch_size', label: 'Batch size', step: '1', min: '1', placeholder: 'auto' },
  { name: 'learning_rate_multiplier', label: 'Learning rate multiplier', step: 'any', min: '0', placeholder: 'auto' },
  { name: 'beta', label: 'DPO beta', step: 'any', min: '0', placeholder: 'auto', dpo: true },
  { name: 'learning_rate', label: 'Learning rate (absolute)', step: 'any', min: '0', placeholder: 'auto', advanced: true },
  { name: 'lora_r', label: 'LoRA rank', step: '1', min: '1', placeholder: 'default', advanced: true },
  { name: 'lora_alpha', label: 'LoRA alpha', step: '1', min: '1', placeholder: 'default', advanced: true },
  { name: 'lora_dropout', label: 'LoRA dropout', step: 'any', min: '0', placeholder: 'default', advanced: true },
  { name: 'max_seq_length', label: 'Max sequence length', step: '1', min: '1', placeholder: 'model default', advanced: true },
  { name: 'warmup_ratio', label: 'Warmup ratio', step: 'any', min: '0', placeholder: 'default', advanced: true },
  { name: 'gradient_accumulation_steps', label: 'Gradient accumulation steps', step: '1', min: '1', placeholder: 'default', advanced: true },
  { name: 'eval_steps', label: 'Evaluate every N steps', step: '1', min: '1', placeholder: 'default', advanced: true },
];

function select(name, options, { required = false, empty = null } = {}) {
  return h('select', { name, required }, empty !== null ? h('option', { value: '' }, empty) : null,
    options.map(([value, label]) => h('option', { value }, label)));
}

function fileChoices(files) {
  return files.filter((file) => file.status === 'processed').map((file) => [
    file.id, `${file.filename} — ${file.id} (${file.statistics?.examples ?? '?'} examples, ${formatBytes(file.bytes)})`,
  ]);
}

// The request body, built the same way for the estimate and for the job itself.
function requestBody(form) {
  const values = new FormData(form);
  const method = values.get('method');
  const hyperparameters = {};
  for (const item of NUMBER_FIELDS) {
    const raw = String(values.get(item.name) ?? '').trim();
    if (raw === '' || (item.dpo && method !== 'dpo')) continue;
    hyperparameters[item.name] = item.step === '1' ? Number.parseInt(raw, 10) : Number(raw);
  }
  const fineTuneType = values.get('fine_tune_type');
  if (fineTuneType) hyperparameters.fine_tune_type = fineTuneType;
  if (values.get('qlora')) hyperparameters.quantization = 'qlora';
  if (values.get('packing') !== 'default') hyperparameters.packing = values.get('packing') === 'on';
  const body = {
    model: values.get('model'),
    training_file: values.get('training_file'),
    method: { type: method, [method]: { hyperparameters } },
  };
  if (values.get('validation_file')) body.validation_file = values.get('validation_file');
  if (String(values.get('suffix')).trim()) body.suffix = String(values.get('suffix')).trim();
  if (String(values.get('seed')).trim()) body.seed = Number.parseInt(String(values.get('seed')), 10);
  return body;
}

function numberInput(item) {
  return field(item.label, h('input', { type: 'number', name: item.name, step: item.step, min: item.min,
    placeholder: item.placeholder, inputmode: item.step === '1' ? 'numeric' : 'decimal' }));
}

function buildForm(models, files) {
  const choices = fileChoices(files);
  const dpoOnly = NUMBER_FIELDS.filter((item) => item.dpo).map(numberInput);
  const form = h(
    'form',
    { class: 'card form-grid', method: 'post', novalidate: true },
    field('Base model', select('model', models.map((model) => [model.id, model.id]), { required: true })),
    field('Method', select('method', [['supervised', 'Supervised (chat)'], ['dpo', 'DPO (preferences)']])),
    field('Training file', select('training_file', choices, { required: true })),
    field('Validation file', select('validation_file', choices, { empty: 'None' })),
    field('Suffix', h('input', { name: 'suffix', maxlength: '64', pattern: '[A-Za-z0-9_\\-]*', placeholder: 'e.g. support-bot' }),
      'Letters, digits, - and _; it becomes part of the fine-tuned model name.'),
    field('Seed', h('input', { type: 'number', name: 'seed', min: '0', step: '1', placeholder: 'random' })),
    NUMBER_FIELDS.filter((item) => !item.advanced && !item.dpo).map(numberInput),
    dpoOnly,
    h('details', { class: 'advanced' }, h('summary', {}, 'Advanced hyperparameters'), h('div', { class: 'form-grid' },
      field('Fine-tune type', select('fine_tune_type', [['lora', 'LoRA'], ['full', 'Full']], { empty: 'Default (LoRA)' })),
      field('Packing', select('packing', [['default', 'Default'], ['on', 'On'], ['off', 'Off']])),
      h('div', { class: 'inline-field' }, h('input', { type: 'checkbox', name: 'qlora', id: 'qlora' }),
        h('label', { for: 'qlora' }, 'QLoRA (4-bit base weights, GPU only)')),
      NUMBER_FIELDS.filter((item) => item.advanced).map(numberInput))),
  );
  const methodSelect = form.elements.namedItem('method');
  const showDpo = () => dpoOnly.forEach((node) => { node.hidden = methodSelect.value !== 'dpo'; });
  methodSelect.addEventListener('change', showDpo);
  showDpo();
  return form;
}

// crypto.randomUUID exists only in secure contexts; a console reached over plain HTTP must work too.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${[...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

export async function render(root, { signal, navigate }) {
  const region = h('div', { 'aria-live': 'polite' });
  replace(root, h('h1', {}, 'New fine-tuning job'), region);
  const [models, files] = await Promise.all([
    getJSON('/v1/models', { signal }).then((list) => list.data.filter((model) => !model.parent)),
    listAll('/v1/files', { signal }),
  ]);
  if (!models.length || !fileChoices(files).length) {
    root.append(alertBox(!models.length ? 'No base model is open for fine-tuning yet; ask an administrator.'
      : 'Upload a training file first.', 'info'), h('p', {}, h('a', { href: '#/files' }, 'Go to the files')));
    return;
  }
  const form = buildForm(models, files);
  const estimateButton = h('button', { type: 'button', class: 'button-quiet' }, 'Estimate');
  const createButton = h('button', { type: 'submit', class: 'button-primary', disabled: true }, 'Create job');
  const result = h('div', { 'aria-live': 'polite' });
  form.append(h('div', { class: 'actions' }, estimateButton, createButton));
  root.append(form, section('Estimate', result));
  replace(result, h('p', { class: 'empty' }, 'Press Estimate: the job can be created once its estimate is shown.'));
  let estimated = null; // the body whose estimate is on screen
  let onceKey = null; // one Idempotency-Key per estimated body: sending it again after a lost answer makes no second job

  // Any change makes the estimate on screen stale: estimate again before creating.
  form.addEventListener('input', () => {
    if (estimated === null) return;
    estimated = null;
    createButton.disabled = true;
    replace(result, h('p', { class: 'empty' }, 'The form changed: estimate again.'));
  });
  estimateButton.addEventListener('click', guarded(region, async () => {
    const body = requestBody(form);
    replace(result, h('p', { class: 'empty' }, 'Counting tokens with the base model’s tokenizer…'));
    try {
      const estimate = await postJSON('/v1/fine_tuning/jobs/estimate', body, { signal });
      replace(result, h('div', { class: 'columns' }, h('div', {}, estimateView(estimate)),
        h('div', {}, h('h3', { class: 'flush' }, 'Resolved hyperparameters'), hyperparametersView(estimate.hyperparameters))));
      estimated = body;
      onceKey = idempotencyKey();
      createButton.disabled = false;
    } catch (error) {
      replace(result, h('p', { class: 'empty' }, 'No estimate.'));
      throw error;
    }
  }));
  form.addEventListener('submit', guarded(region, async () => {
    if (estimated === null) return;
    const job = await postJSON('/v1/fine_tuning/jobs', estimated, {
      signal, headers: { 'Idempotency-Key': onceKey },
    });
    navigate(`#/jobs/${job.id}`);
  }));
}
