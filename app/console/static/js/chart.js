// Metric curves against steps, drawn with uPlot (canvas; smooth at 100,000 points and more).
// Points may arrive one at a time from the event stream: they are stored at once and drawn at most once
// per animation frame, so a burst of a thousand events costs one redraw.
import uPlot from '../vendor/uplot/uPlot.esm.js';

const HEIGHT = 260;
const STEP_INCREMENTS = [1, 2, 5].flatMap((base) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6].map((scale) => base * scale))
  .sort((left, right) => left - right);

function insertionIndex(sorted, value) {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle] < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class MetricChart {
  // series: [{ key, label, color, sparse }]; a sparse series (validation) is joined across the steps it lacks.
  // range: a fixed [min, max] of the y axis (accuracy lies in [0, 1]); otherwise fitted to the data.
  constructor(container, { label, series, yLabel, range = null }) {
    this.container = container;
    this.series = series;
    this.steps = [];
    this.columns = series.map(() => []);
    this.rowOf = new Map();
    this.points = 0;
    this.frame = 0;
    this.onDraw = null;
    this.drawStartedAt = 0;
    this.lastDrawMilliseconds = null; // from new data to uPlot's finished draw: what a redraw costs
    container.classList.add('chart');
    container.setAttribute('role', 'img');
    container.setAttribute('aria-label', label);
    container.dataset.points = '0';
    this.plot = new uPlot(this.options(yLabel, range), [[], ...this.columns], container);
    this.resizer = new ResizeObserver(() => this.fit());
    this.resizer.observe(container);
  }

  options(yLabel, range) {
    return {
      width: Math.max(this.container.clientWidth, 280),
      height: HEIGHT,
      scales: { x: { time: false }, y: range ? { range } : {} },
      // Steps are whole numbers: no tick at 1.5.
      axes: [{ label: 'step', incrs: STEP_INCREMENTS }, { label: yLabel, size: 60 }],
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [() => this.drawn()] },
      series: [
        { label: 'step' },
        ...this.series.map((item) => ({
          label: item.label,
          stroke: item.color,
          width: item.sparse ? 2 : 1.5,
          spanGaps: Boolean(item.sparse),
          points: { size: 5 }, // uPlot shows the markers only where they are sparse enough to read
          value: (_, value) => (value === null || value === undefined ? '—' : Number(value.toPrecision(4))),
        })),
      ],
    };
  }

  fit() {
    const width = Math.max(this.container.clientWidth, 280);
    if (width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
  }

  // values: { [series key]: number }; a step seen again (a resumed attempt) takes the newer values.
  add(step, values) {
    let row = this.rowOf.get(step);
    if (row === undefined) row = this.newRow(step);
    this.series.forEach((item, index) => {
      const value = values[item.key];
      if (typeof value !== 'number' || !Number.isFinite(value)) return;
      if (this.columns[index][row] === null) this.points += 1;
      this.columns[index][row] = value;
    });
    this.schedule();
  }

  newRow(step) {
    const last = this.steps.length ? this.steps[this.steps.length - 1] : -Infinity;
    if (step > last) {
      this.steps.push(step);
      this.columns.forEach((column) => column.push(null));
      this.rowOf.set(step, this.steps.length - 1);
      return this.steps.length - 1;
    }
    const row = insertionIndex(this.steps, step);
    this.steps.splice(row, 0, step);
    this.columns.forEach((column) => column.splice(row, 0, null));
    this.rowOf = new Map(this.steps.map((value, index) => [value, index]));
    return row;
  }

  hasValues() {
    return this.points > 0;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    this.drawStartedAt = performance.now();
    this.plot.setData([this.steps, ...this.columns]);
    this.container.dataset.points = String(this.points);
    this.container.dataset.lastStep = String(this.steps.length ? this.steps[this.steps.length - 1] : '');
    this.onDraw?.();
  }

  drawn() {
    if (this.drawStartedAt) this.lastDrawMilliseconds = performance.now() - this.drawStartedAt;
    this.drawStartedAt = 0;
  }

  latest(key) {
    const index = this.series.findIndex((item) => item.key === key);
    const column = this.columns[index] ?? [];
    for (let row = column.length - 1; row >= 0; row -= 1) {
      if (column[row] !== null) return { step: this.steps[row], value: column[row] };
    }
    return null;
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.resizer.disconnect();
    this.plot.destroy();
  }
}
