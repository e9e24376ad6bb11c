// Training curves as one self-contained SVG: a grid of small line charts over steps, training
// series solid and eval series dashed, written next to metrics.jsonl (no browser needed).
import type { MetricsRecord } from '../train/metrics';

/** Panels: a title and the metric keys drawn in it; a panel with no data is left out. */
export const DEFAULT_PANELS: [string, string[]][] = [
  ['loss', ['loss', 'eval_loss']],
  ['rewards/accuracies', ['rewards/accuracies', 'eval_rewards/accuracies']],
  ['rewards/margins', ['rewards/margins', 'eval_rewards/margins']],
  [
    'rewards',
    ['rewards/chosen', 'rewards/rejected', 'eval_rewards/chosen', 'eval_rewards/rejected'],
  ],
  ['logps', ['logps/chosen', 'logps/rejected']],
  ['grad_norm', ['grad_norm']],
  ['learning_rate', ['learning_rate']],
];

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];
const W = 360; // one panel, in px
const H = 220;
const PAD = { left: 56, right: 12, top: 26, bottom: 30 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-2 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

function panel(
  title: string,
  series: { key: string; points: [number, number][] }[],
  x0: number,
  y0: number,
): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  let [xmin, xmax] = [Math.min(...xs), Math.max(...xs)];
  let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
  if (xmax === xmin) {
    xmin -= 1;
    xmax += 1;
  }
  if (ymax === ymin) {
    ymin -= Math.abs(ymin) * 0.1 || 1;
    ymax += Math.abs(ymax) * 0.1 || 1;
  }
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const sx = (x: number) => x0 + PAD.left + ((x - xmin) / (xmax - xmin)) * pw;
  const sy = (y: number) => y0 + PAD.top + (1 - (y - ymin) / (ymax - ymin)) * ph;

  const out: string[] = [];
  out.push(
    `<rect x="${x0 + PAD.left}" y="${y0 + PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`,
  );
  out.push(
    `<text x="${x0 + PAD.left}" y="${y0 + 16}" font-size="13" font-weight="bold">${esc(title)}</text>`,
  );
  // axis ticks: three on each axis
  for (let i = 0; i <= 2; i++) {
    const yv = ymin + ((ymax - ymin) * i) / 2;
    const xv = xmin + ((xmax - xmin) * i) / 2;
    out.push(
      `<text x="${x0 + PAD.left - 4}" y="${sy(yv) + 4}" font-size="10" text-anchor="end">${fmt(yv)}</text>`,
    );
    out.push(
      `<text x="${sx(xv)}" y="${y0 + H - 14}" font-size="10" text-anchor="middle">${fmt(Math.round(xv))}</text>`,
    );
  }
  // series and legend
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const dash = s.key.startsWith('eval_') ? ' stroke-dasharray="5,3"' : '';
    const d = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="1.6"${dash}/>`);
    if (s.points.length === 1)
      out.push(
        `<circle cx="${sx(s.points[0][0])}" cy="${sy(s.points[0][1])}" r="3" fill="${color}"/>`,
      );
    out.push(
      `<text x="${x0 + W - PAD.right}" y="${y0 + 16 + i * 12}" font-size="10" text-anchor="end" fill="${color}">${esc(s.key)}</text>`,
    );
  });
  out.push(
    `<text x="${x0 + PAD.left + pw / 2}" y="${y0 + H - 2}" font-size="10" text-anchor="middle">step</text>`,
  );
  return out.join('\n');
}

/** An SVG document of the training and eval curves in `history` (records with a step). */
export function plotMetrics(
  history: readonly MetricsRecord[],
  title = 'training',
  panels = DEFAULT_PANELS,
): string {
  const drawn: [string, { key: string; points: [number, number][] }[]][] = [];
  for (const [name, keys] of panels) {
    const series = keys
      .map((key) => ({
        key,
        points: history
          .filter((r) => Number.isFinite(r[key]) && Number.isFinite(r.step))
          .map((r) => [r.step, r[key]] as [number, number]),
      }))
      .filter((s) => s.points.length > 0);
    if (series.length > 0) drawn.push([name, series]);
  }
  const cols = Math.min(3, Math.max(1, drawn.length));
  const rows = Math.ceil(drawn.length / cols);
  const width = cols * W;
  const height = rows * H + 30;
  const body = drawn.map(([name, series], i) =>
    panel(name, series, (i % cols) * W, 30 + Math.floor(i / cols) * H),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="20" font-size="15">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
