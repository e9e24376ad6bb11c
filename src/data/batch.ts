// Batching tokenized pairs: right-padded ids, lengths and completion masks aligned to shifted
// targets; seeded shuffles, grouping by length, and a held-out split.
import { expectedError } from '../errors';
import type { TokenizedPair } from './types';

/**
 * 2B rows for B pairs: chosen_0..chosen_{B-1}, then rejected_0..rejected_{B-1} (TRL's
 * concatenated layout). Row r holds lengths[r] real tokens, then padding; masks come from the
 * lengths, never from comparing ids with the pad id (for GPT-2 pad = end-of-text, which is scored).
 */
export interface PreferenceBatch {
  inputIds: Int32Array; // [2B*T]
  lengths: Int32Array; // [2B] prompt + completion tokens
  promptLengths: Int32Array; // [2B]
  completionMask: Uint8Array; // [2B*T]; mask[r][t] = 1 iff target t (token t+1) is a completion token
  rows: number; // 2B
  pairs: number; // B
  T: number;
}

/** Supervised fine-tuning rows from the same pairs: prompt + chosen only, B rows. */
export interface SftBatch {
  inputIds: Int32Array; // [B*T]
  lengths: Int32Array; // [B]
  promptLengths: Int32Array; // [B]
  completionMask: Uint8Array; // [B*T], as in PreferenceBatch
  rows: number; // B
  T: number;
}

export interface BatchOptions {
  batchSize: number; // B, pairs per batch
  seed?: number; // shuffle seed; default 0
  shuffle?: boolean; // default true
  groupByLength?: boolean; // batch pairs of similar length together to cut padding
  dropLast?: boolean; // drop a last batch smaller than batchSize
  padToMultipleOf?: number; // round T up
  padId?: number; // default 50256 (GPT-2's end-of-text); its value never enters a mask
}

// ---------------------------------------------------------------------------------------------
// Collation

type Row = { promptIds: readonly number[]; completionIds: readonly number[] };

function collateRows(rows: readonly Row[], padId: number, padToMultipleOf = 1) {
  let T = 0;
  for (const r of rows) T = Math.max(T, r.promptIds.length + r.completionIds.length);
  T = Math.ceil(T / padToMultipleOf) * padToMultipleOf;
  const inputIds = new Int32Array(rows.length * T).fill(padId);
  const lengths = new Int32Array(rows.length);
  const promptLengths = new Int32Array(rows.length);
  const completionMask = new Uint8Array(rows.length * T);

  rows.forEach((r, i) => {
    const P = r.promptIds.length;
    const L = P + r.completionIds.length;
    inputIds.set(r.promptIds, i * T);
    inputIds.set(r.completionIds, i * T + P);
    lengths[i] = L;
    promptLengths[i] = P;
    // Position t predicts token t+1: targets P-1 .. L-2 are the completion tokens P .. L-1.
    completionMask.fill(1, i * T + Math.max(P - 1, 0), i * T + L - 1);
  });
  return { inputIds, lengths, promptLengths, completionMask, rows: rows.length, T };
}

export function collatePreference(
  pairs: readonly TokenizedPair[],
  padId = 50256,
  padToMultipleOf = 1,
): PreferenceBatch {
  const rows: Row[] = [
    ...pairs.map((p) => ({ promptIds: p.promptIds, completionIds: p.chosenIds })),
    ...pairs.map((p) => ({ promptIds: p.promptIds, completionIds: p.rejectedIds })),
  ];
  return { ...collateRows(rows, padId, padToMultipleOf), pairs: pairs.length };
}

export function collateSft(
  pairs: readonly TokenizedPair[],
  padId = 50256,
  padToMultipleOf = 1,
): SftBatch {
  return collateRows(
    pairs.map((p) => ({ promptIds: p.promptIds, completionIds: p.chosenIds })),
    padId,
    padToMultipleOf,
  );
}

// ---------------------------------------------------------------------------------------------
// Ordering

/** A seeded generator of floats in [0, 1) (mulberry32): the same seed gives the same order. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rand = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const pairLength = (p: TokenizedPair) =>
  p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length);
const GROUP_BATCHES = 32; // grouping sorts windows of this many batches, so order stays random

function checkBatchOptions(opts: BatchOptions) {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw expectedError(
      'batchSize',
      'to be an integer >= 1',
      opts.batchSize,
      'pairs per batch, e.g. 8',
    );
  }
  const m = opts.padToMultipleOf;
  if (m !== undefined && (!Number.isInteger(m) || m < 1)) {
    throw expectedError('padToMultipleOf', 'to be an integer >= 1', m, 'e.g. 8, or leave it out');
  }
}

/** The pairs of each batch of one epoch, in order. */
export function batchOrder(pairs: readonly TokenizedPair[], opts: BatchOptions): TokenizedPair[][] {
  checkBatchOptions(opts);
  const seed = opts.seed ?? 0;
  const B = opts.batchSize;
  const order = opts.shuffle === false ? pairs.slice() : shuffled(pairs, seed);
  let batches: TokenizedPair[][] = [];
  if (opts.groupByLength) {
    // Sort each window of shuffled pairs by length, cut it into batches, then shuffle batches.
    const window = B * GROUP_BATCHES;
    for (let w = 0; w < order.length; w += window) {
      const sorted = order.slice(w, w + window).sort((a, b) => pairLength(b) - pairLength(a));
      for (let i = 0; i < sorted.length; i += B) batches.push(sorted.slice(i, i + B));
    }
    if (opts.dropLast) batches = batches.filter((b) => b.length === B);
    return opts.shuffle === false ? batches : shuffled(batches, seed + 1);
  }
  for (let i = 0; i < order.length; i += B) batches.push(order.slice(i, i + B));
  return opts.dropLast ? batches.filter((b) => b.length === B) : batches;
}

export function makeBatches(
  pairs: readonly TokenizedPair[],
  opts: BatchOptions,
): PreferenceBatch[] {
  return batchOrder(pairs, opts).map((b) => collatePreference(b, opts.padId, opts.padToMultipleOf));
}

export function makeSftBatches(pairs: readonly TokenizedPair[], opts: BatchOptions): SftBatch[] {
  return batchOrder(pairs, opts).map((b) => collateSft(b, opts.padId, opts.padToMultipleOf));
}

/**
 * A held-out split when no eval file is given: round(fraction * n) items (at least one) chosen
 * by the seed; both parts keep the input order.
 */
export function splitEval<T>(
  items: readonly T[],
  opts: { fraction: number; seed?: number },
): { train: T[]; eval: T[] } {
  const { fraction } = opts;
  if (!(fraction > 0 && fraction < 1)) {
    throw expectedError(
      'evalSplit',
      'to be a fraction in (0, 1)',
      fraction,
      'e.g. 0.05 holds out 5%',
    );
  }
  const nEval = Math.max(1, Math.round(items.length * fraction));
  if (items.length - nEval < 1) {
    throw expectedError(
      'evalSplit',
      `to leave training pairs out of ${items.length}`,
      fraction,
      'use more pairs or a smaller fraction',
    );
  }
  const held = new Set(
    shuffled(
      items.map((_, i) => i),
      opts.seed ?? 0,
    ).slice(0, nEval),
  );
  return {
    train: items.filter((_, i) => !held.has(i)),
    eval: items.filter((_, i) => held.has(i)),
  };
}
