// Tokenizing pairs so the prompt/completion boundary is exact on token ids, appending
// end-of-text, and truncating to the length limits.
import { expectedError } from '../errors';
import type { Tokenizer } from '../tokenizer';
import {
  dataError,
  PreferencePair,
  TokenizedPair,
  TokenizeOptions,
  TokenizeReport,
  TruncationMode,
} from './types';

export interface EncodedPrompt {
  promptIds: number[];
  completionIds: number[];
  merged: boolean; // the joint text would tokenize differently at the boundary (see below)
}

/**
 * The boundary rule. GPT-2's pre-tokenizer glues a space (and a run of whitespace but its last
 * character) to the word after it, so "Assistant: " + "Hi" tokenizes as "Assistant", ":", " Hi":
 * a prompt ending in whitespace has no token boundary where its text ends. Rule: whitespace at
 * the end of the prompt moves to the start of the completion, then the two parts are encoded
 * separately and concatenated. No token can straddle the boundary, by construction, and the ids
 * decode to exactly prompt + completion. When the completion then starts with whitespace, the
 * joint text tokenizes to the same ids (no GPT-2 pre-token runs from non-space into space);
 * otherwise (a prompt ending inside a word, say) the joint text is encoded too, and a
 * difference is reported as a boundary merge.
 */
export function encodePromptCompletion(
  tokenizer: Tokenizer,
  prompt: string,
  completion: string,
  promptIds?: number[],
): EncodedPrompt {
  const [head, tail] = splitTrailingSpace(prompt);
  const ids = promptIds ?? tokenizer.encode(head);
  const rest = tail + completion;
  const completionIds = tokenizer.encode(rest);
  let merged = false;
  if (head !== '' && rest !== '' && !/^\s/.test(rest)) {
    const joint = tokenizer.encode(head + rest);
    merged =
      joint.length !== ids.length + completionIds.length ||
      joint.some((id, i) => id !== (i < ids.length ? ids[i] : completionIds[i - ids.length]));
  }
  return { promptIds: ids, completionIds, merged };
}

/** [prompt without its trailing whitespace, that whitespace]. */
export function splitTrailingSpace(prompt: string): [string, string] {
  const m = /\s+$/.exec(prompt);
  return m ? [prompt.slice(0, m.index), m[0]] : [prompt, ''];
}

/**
 * Untruncated ids of each pair: prompt, and each completion with end-of-text appended unless it
 * is already there. An empty prompt becomes [eos], GPT-2's start of text, so that the first
 * completion token has a position to be predicted from and is scored.
 */
export function encodePairs(
  pairs: readonly PreferencePair[],
  tokenizer: Tokenizer,
): { tokenized: TokenizedPair[]; boundaryMerges: number } {
  const eos = tokenizer.eosTokenId;
  const withEos = (ids: number[]) => (ids[ids.length - 1] === eos ? ids : [...ids, eos]);
  const tokenized: TokenizedPair[] = [];
  let boundaryMerges = 0;
  for (const pair of pairs) {
    let promptIds: number[];
    let chosenIds: number[];
    let rejectedIds: number[];
    if (pair.kind === 'ids') {
      for (const ids of [pair.promptIds, pair.chosenIds, pair.rejectedIds])
        checkIds(ids, tokenizer, pair.origin);
      ({ promptIds, chosenIds, rejectedIds } = pair);
    } else {
      const c = encodePromptCompletion(tokenizer, pair.prompt, pair.chosen);
      const r = encodePromptCompletion(tokenizer, pair.prompt, pair.rejected, c.promptIds);
      if (c.merged || r.merged) boundaryMerges++;
      promptIds = c.promptIds;
      chosenIds = c.completionIds;
      rejectedIds = r.completionIds;
    }
    tokenized.push({
      promptIds: promptIds.length > 0 ? promptIds : [eos],
      chosenIds: withEos(chosenIds),
      rejectedIds: withEos(rejectedIds),
      origin: pair.origin,
    });
  }
  return { tokenized, boundaryMerges };
}

function checkIds(ids: readonly number[], tokenizer: Tokenizer, where: string) {
  for (const id of ids) {
    if (id >= tokenizer.vocabSize) {
      throw dataError(
        where,
        `token ids below the vocabulary size ${tokenizer.vocabSize}`,
        String(id),
        "pre-tokenize with the model's own tokenizer",
      );
    }
  }
}

/** Checks the limits; undefined fields mean no limit. */
export function checkTokenizeOptions(
  opts: TokenizeOptions,
): Required<Pick<TokenizeOptions, 'truncationMode'>> {
  for (const name of ['maxLength', 'maxPromptLength'] as const) {
    const v = opts[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw expectedError(name, 'to be an integer >= 1', v, 'it counts tokens, e.g. 512');
    }
  }
  const mode = opts.truncationMode ?? 'keep_end';
  if (mode !== 'keep_start' && mode !== 'keep_end') {
    throw expectedError(
      'truncationMode',
      'to be "keep_start" or "keep_end"',
      mode,
      "keep_end keeps the prompt's last tokens, next to the completion",
    );
  }
  return { truncationMode: mode };
}

/**
 * Applies the limits: the prompt is cut to maxPromptLength (keeping its start or its end), then
 * each completion to what maxLength leaves. A pair left with an empty completion is dropped.
 */
export function truncatePairs(
  tokenized: readonly TokenizedPair[],
  opts: TokenizeOptions = {},
): { kept: TokenizedPair[]; report: Omit<TokenizeReport, 'boundaryMerges'> } {
  const { truncationMode } = checkTokenizeOptions(opts);
  const report = {
    pairs: tokenized.length,
    kept: 0,
    truncatedPrompt: 0,
    truncatedChosen: 0,
    truncatedRejected: 0,
    droppedEmptyCompletion: 0,
    identicalAfterTruncation: 0,
  };
  const kept: TokenizedPair[] = [];
  for (const pair of tokenized) {
    let promptIds = pair.promptIds;
    if (opts.maxPromptLength !== undefined && promptIds.length > opts.maxPromptLength) {
      promptIds = cut(promptIds, opts.maxPromptLength, truncationMode);
      report.truncatedPrompt++;
    }
    let { chosenIds, rejectedIds } = pair;
    if (opts.maxLength !== undefined) {
      const room = Math.max(0, opts.maxLength - promptIds.length);
      if (chosenIds.length > room) {
        chosenIds = chosenIds.slice(0, room);
        report.truncatedChosen++;
      }
      if (rejectedIds.length > room) {
        rejectedIds = rejectedIds.slice(0, room);
        report.truncatedRejected++;
      }
    }
    if (chosenIds.length === 0 || rejectedIds.length === 0) {
      report.droppedEmptyCompletion++;
      continue;
    }
    if (sameIds(chosenIds, rejectedIds) && !sameIds(pair.chosenIds, pair.rejectedIds)) {
      report.identicalAfterTruncation++;
      if (!opts.keepDegenerate) continue;
    }
    kept.push({ promptIds, chosenIds, rejectedIds, origin: pair.origin });
  }
  report.kept = kept.length;
  return { kept, report };
}

function cut(ids: number[], n: number, mode: TruncationMode): number[] {
  return mode === 'keep_start' ? ids.slice(0, n) : ids.slice(ids.length - n);
}

export function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** Pairs to ids the model scores: encodePairs, then truncatePairs. */
export function tokenizePairs(
  pairs: readonly PreferencePair[],
  tokenizer: Tokenizer,
  opts: TokenizeOptions = {},
): { pairs: TokenizedPair[]; report: TokenizeReport } {
  checkTokenizeOptions(opts);
  const { tokenized, boundaryMerges } = encodePairs(pairs, tokenizer);
  const { kept, report } = truncatePairs(tokenized, opts);
  return { pairs: kept, report: { ...report, boundaryMerges } };
}
