// The three charts, drawn with uPlot on canvas. Each keeps its chart and
// redraws it when its container changes size. The numbers behind every
// chart are also written as a table in the page (see app.js), for people
// and screen readers who would rather read than look.
import uPlot from './vendor/uplot/uPlot.esm.js';

const HEIGHT = 220;
const blue = '#2563eb';
const colors = { negative: '#dc2626', neutral: '#9ca3af', positive: '#16a34a' };
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
// Axis ticks in short form (12K, 1.5M), so they fit the axis at any volume.
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

/** Chart is one uPlot chart in a container element, rebuilt on new data. */
class Chart {
  constructor(el, options) {
    this.el = el;
    this.options = options;
    this.plot = null;
    new ResizeObserver(() => {
      if (this.plot && this.el.clientWidth > 0) this.plot.setSize({ width: this.el.clientWidth, height: HEIGHT });
    }).observe(el);
  }

  /**
   * set draws data ([xs, ...ys]); empty says there is nothing to show, and
   * xRange, when given, is the [min, max] of the x axis.
   */
  set(data, { empty = false, xRange = null } = {}) {
    this.plot?.destroy();
    this.el.replaceChildren();
    const options = { ...this.options, width: Math.max(this.el.clientWidth, 200), height: HEIGHT };
    if (xRange) options.scales = { ...options.scales, x: { ...options.scales.x, range: xRange } };
    this.plot = new uPlot(options, data, this.el);
    this.el.classList.toggle('empty', empty);
    this.el.dataset.points = String(data[0].length);
  }
}

const axisStyle = { stroke: '#4b5563', grid: { stroke: '#e5e7eb', width: 1 }, ticks: { stroke: '#e5e7eb', width: 1 } };

// Feedback counts: whole numbers from 0 up.
const countScale = { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] };
const countAxis = { ...axisStyle, size: 48, values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? compact.format(v) : '')) };

/** volumeChart shows feedback per time bucket as bars. */
export function volumeChart(el) {
  return new Chart(el, {
    scales: { x: { time: true }, y: countScale },
    axes: [axisStyle, countAxis],
    legend: { show: true },
    cursor: { points: { show: false } },
    series: [
      { label: 'Bucket', value: (u, v) => (v == null ? '-' : dateLabel.format(new Date(v * 1000))) },
      {
        label: 'Feedback', stroke: blue, fill: 'rgba(37, 99, 235, 0.35)', width: 1,
        paths: uPlot.paths.bars({ size: [0.85, 64], align: 1 }), points: { show: false },
        value: (u, v) => (v == null ? '-' : integer.format(v)),
      },
    ],
  });
}

const dateLabel = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/**
 * weightedChart shows the average value x weight per bucket, drawn at the
 * middle of each bucket (x is the bucket start plus half its size, which
 * halfBucket gives); buckets without feedback are gaps, not zeros.
 */
export function weightedChart(el, halfBucket) {
  return new Chart(el, {
    scales: {
      x: { time: true },
      y: {
        range: (u, min, max) => (min == null || max == null
          ? [-1, 1]
          : [Math.max(-10, Math.floor(Math.min(min, 0)) - 1), Math.min(10, Math.ceil(Math.max(max, 0)) + 1)]),
      },
    },
    axes: [axisStyle, { ...axisStyle, size: 48 }],
    series: [
      { label: 'Bucket', value: (u, v) => (v == null ? '-' : dateLabel.format(new Date((v - halfBucket()) * 1000))) },
      {
        label: 'Weighted average', stroke: '#7c3aed', width: 2, spanGaps: false,
        points: { show: true, size: 7, fill: '#7c3aed' },
        value: (u, v) => (v == null ? 'no feedback' : v.toFixed(2)),
      },
    ],
  });
}

/** scoreChart shows how many feedback have each score, -10 to 10. */
export function scoreChart(el) {
  const bars = uPlot.paths.bars({ size: [0.8, 48] });
  const series = (label, stroke) => ({
    label, stroke, fill: stroke, width: 0, paths: bars, points: { show: false },
    value: (u, v) => (v == null ? '-' : integer.format(v)),
  });
  return new Chart(el, {
    scales: { x: { time: false, range: [-10.6, 10.6] }, y: countScale },
    axes: [
      { ...axisStyle, incrs: [1, 2, 5], values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')) },
      countAxis,
    ],
    cursor: { points: { show: false } },
    series: [{ label: 'Score', value: (u, v) => (v == null ? '-' : String(v)) },
      series('Negative', colors.negative), series('Zero', colors.neutral), series('Positive', colors.positive)],
  });
}
