// `dpo data inspect`: what reading, tokenizing and truncating do to a dataset, as a report
// object (for --json and tests) and as text with examples whose boundary is marked.
import { loadTokenizer, Tokenizer } from '../tokenizer';
import { forEachPreferencePair, LoadOptions } from './load';
import { checkTokenizeOptions, encodePairs, truncatePairs } from './tokenize';
import { DataReport, TokenizedPair, TokenizeOptions, TokenizeReport } from './types';

export interface InspectOptions extends LoadOptions, TokenizeOptions {
  examples?: number; // pairs to render; default 3
  tokenizer?: Tokenizer; // default: read from modelDir, else GPT-2's
  modelDir?: string;
}

export interface LengthStats {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export interface InspectExample {
  origin: string;
  prompt: string; // decoded prompt ids, as the model sees them after truncation
  chosen: string; // decoded completion ids, end-of-text shown as <|endoftext|>
  rejected: string;
  promptTokens: number;
  chosenTokens: number;
  rejectedTokens: number;
}

export interface InspectReport {
  source: string[];
  formats: string[]; // distinct formats found, in file order
  data: DataReport;
  tokens: TokenizeReport; // at the given limits
  limits: { maxLength: number | null; maxPromptLength: number | null; truncationMode: string };
  lengths: { prompt: LengthStats; chosen: LengthStats; rejected: LengthStats; total: LengthStats };
  examples: InspectExample[];
}

export const BOUNDARY_MARK = '«|»';

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function lengthStats(values: readonly number[]): LengthStats {
  const sorted = values.slice().sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((s, v) => s + v, 0) / sorted.length : 0;
  return {
    count: sorted.length,
    min: sorted[0] ?? 0,
    mean: Math.round(mean * 10) / 10,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

export async function inspectData(
  source: string | readonly string[],
  opts: InspectOptions = {},
): Promise<InspectReport> {
  const { truncationMode } = checkTokenizeOptions(opts);
  const tokenizer = opts.tokenizer ?? (await loadTokenizer(opts.modelDir));

  // Pair by pair, keeping only lengths and a few examples, so any file size can be inspected.
  // Lengths are taken before truncation, so the statistics show what the limits would cut.
  const lengths = {
    prompt: [] as number[],
    chosen: [] as number[],
    rejected: [] as number[],
    total: [] as number[],
  };
  const report: Omit<TokenizeReport, 'boundaryMerges'> = {
    pairs: 0,
    kept: 0,
    truncatedPrompt: 0,
    truncatedChosen: 0,
    truncatedRejected: 0,
    droppedEmptyCompletion: 0,
    identicalAfterTruncation: 0,
  };
  let boundaryMerges = 0;
  const kept: TokenizedPair[] = [];
  const data = await forEachPreferencePair(source, opts, (pair) => {
    const encoded = encodePairs([pair], tokenizer);
    boundaryMerges += encoded.boundaryMerges;
    const p = encoded.tokenized[0];
    lengths.prompt.push(p.promptIds.length);
    lengths.chosen.push(p.chosenIds.length);
    lengths.rejected.push(p.rejectedIds.length);
    lengths.total.push(p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length));
    const truncated = truncatePairs(encoded.tokenized, opts);
    for (const k of Object.keys(report) as (keyof typeof report)[])
      report[k] += truncated.report[k];
    if (kept.length < (opts.examples ?? 3)) kept.push(...truncated.kept);
  });

  return {
    source: typeof source === 'string' ? [source] : [...source],
    formats: [...new Set(data.files.map((f) => f.format))],
    data,
    tokens: { ...report, boundaryMerges },
    limits: {
      maxLength: opts.maxLength ?? null,
      maxPromptLength: opts.maxPromptLength ?? null,
      truncationMode,
    },
    lengths: {
      prompt: lengthStats(lengths.prompt),
      chosen: lengthStats(lengths.chosen),
      rejected: lengthStats(lengths.rejected),
      total: lengthStats(lengths.total),
    },
    examples: kept.slice(0, opts.examples ?? 3).map((p) => ({
      origin: p.origin ?? '',
      prompt: tokenizer.decode(p.promptIds),
      chosen: tokenizer.decode(p.chosenIds),
      rejected: tokenizer.decode(p.rejectedIds),
      promptTokens: p.promptIds.length,
      chosenTokens: p.chosenIds.length,
      rejectedTokens: p.rejectedIds.length,
    })),
  };
}

/** The report as text for a terminal. */
export function formatInspectReport(r: InspectReport): string {
  const d = r.data;
  const t = r.tokens;
  const drop = d.degenerateKept ? 'kept' : 'dropped';
  const lines: string[] = [];
  lines.push(`source: ${r.source.join(', ')}`);
  for (const f of d.files) lines.push(`  ${f.file}: ${f.rows} rows, format ${f.format}`);
  lines.push('', 'rows');
  lines.push(`  read                       ${d.rows}`);
  lines.push(`  pairs kept                 ${d.pairs}`);
  lines.push(`  bad rows skipped           ${d.badRows}`);
  lines.push(`  identical chosen/rejected  ${d.identical} (${drop})`);
  lines.push(`  empty response             ${d.emptyResponse} (${drop})`);
  lines.push(`  one response a prefix      ${d.prefixResponse} (${drop})`);
  lines.push(`  prompt split at an earlier shared turn  ${d.divergedBeforeLastTurn}`);
  for (const m of d.badRowMessages) lines.push(`  bad: ${m}`);

  lines.push('', 'tokens (before truncation; completions include end-of-text)');
  lines.push(
    '  ' +
      ['', 'min', 'mean', 'p50', 'p90', 'p95', 'p99', 'max']
        .map((h, i) => (i ? h.padStart(7) : h.padEnd(9)))
        .join(''),
  );
  for (const [name, s] of Object.entries(r.lengths)) {
    const cells = [s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.max].map((v) =>
      String(v).padStart(7),
    );
    lines.push(`  ${name.padEnd(9)}${cells.join('')}`);
  }
  lines.push(`  boundary merges (prompt ends inside a token)  ${t.boundaryMerges}`);

  const limits = `maxLength ${r.limits.maxLength ?? 'none'}, maxPromptLength ${r.limits.maxPromptLength ?? 'none'}, ${r.limits.truncationMode}`;
  lines.push('', `truncation at ${limits}`);
  lines.push(`  prompts truncated          ${t.truncatedPrompt}`);
  lines.push(`  chosen truncated           ${t.truncatedChosen}`);
  lines.push(`  rejected truncated         ${t.truncatedRejected}`);
  lines.push(`  dropped, empty completion  ${t.droppedEmptyCompletion}`);
  lines.push(`  dropped, identical after truncation  ${t.identicalAfterTruncation}`);
  lines.push(`  pairs trained on           ${t.kept}`);

  r.examples.forEach((e, i) => {
    lines.push(
      '',
      `example ${i + 1} (${e.origin}; prompt ${e.promptTokens} tokens, ${BOUNDARY_MARK} marks where the completion starts)`,
    );
    lines.push(
      `  chosen   (${e.chosenTokens} tokens): ${JSON.stringify(e.prompt + BOUNDARY_MARK + e.chosen)}`,
    );
    lines.push(
      `  rejected (${e.rejectedTokens} tokens): ${JSON.stringify(e.prompt + BOUNDARY_MARK + e.rejected)}`,
    );
  });
  return lines.join('\n') + '\n';
}
