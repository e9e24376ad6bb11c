// Metrics: running means between logging steps, and the metrics.jsonl file of a run.
import fs from 'fs';
import path from 'path';

/** One line of metrics.jsonl / log_history: TRL's keys, plus step. */
export type MetricsRecord = Record<string, number>;

/** Sums values per key and hands back their means, as TRL averages between logging steps. */
export class RunningMeans {
  private sums = new Map<string, number>();
  private counts = new Map<string, number>();

  add(values: Record<string, number>, weight = 1): void {
    for (const [k, v] of Object.entries(values)) {
      this.sums.set(k, (this.sums.get(k) ?? 0) + v * weight);
      this.counts.set(k, (this.counts.get(k) ?? 0) + weight);
    }
  }

  get size(): number {
    return this.sums.size;
  }

  /** The means so far, then a reset. */
  take(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, s] of this.sums) out[k] = s / (this.counts.get(k) ?? 1);
    this.sums.clear();
    this.counts.clear();
    return out;
  }
}

/** DPO metrics of one batch, from the kernel's per-pair outputs (TRL's definitions). */
export function dpoBatchMetrics(o: {
  loss: number;
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  chosenLogps: Float32Array;
  rejectedLogps: Float32Array;
  chosenLogitsMean: number;
  rejectedLogitsMean: number;
}): Record<string, number> {
  const B = o.chosenRewards.length;
  let rc = 0,
    rr = 0,
    acc = 0,
    lc = 0,
    lr = 0;
  for (let b = 0; b < B; b++) {
    rc += o.chosenRewards[b];
    rr += o.rejectedRewards[b];
    acc += o.chosenRewards[b] > o.rejectedRewards[b] ? 1 : 0;
    lc += o.chosenLogps[b];
    lr += o.rejectedLogps[b];
  }
  const m: Record<string, number> = {
    loss: o.loss,
    'rewards/chosen': rc / B,
    'rewards/rejected': rr / B,
    'rewards/accuracies': acc / B,
    'rewards/margins': (rc - rr) / B,
    'logps/chosen': lc / B,
    'logps/rejected': lr / B,
    'logits/chosen': o.chosenLogitsMean,
    'logits/rejected': o.rejectedLogitsMean,
  };
  return m;
}

/** Prefixes every key with eval_, as TRL names evaluation metrics. */
export function evalPrefixed(m: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) out[`eval_${k}`] = v;
  return out;
}

/** Appends records to outputDir/metrics.jsonl (truncated at the start of a fresh run). */
export class MetricsFile {
  readonly file: string;

  constructor(outputDir: string, fresh: boolean) {
    this.file = path.join(outputDir, 'metrics.jsonl');
    fs.mkdirSync(outputDir, { recursive: true });
    if (fresh) fs.writeFileSync(this.file, '');
  }

  /** On resume: keeps only records up to `step`, so re-run steps are not written twice. */
  truncateAfter(step: number): void {
    if (!fs.existsSync(this.file)) return;
    const kept = fs
      .readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          return (JSON.parse(line).step ?? 0) <= step;
        } catch {
          return false;
        }
      });
    fs.writeFileSync(this.file, kept.map((l) => l + '\n').join(''));
  }

  append(record: MetricsRecord): void {
    fs.appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

/** Reads metrics.jsonl back. */
export function readMetrics(file: string): MetricsRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
