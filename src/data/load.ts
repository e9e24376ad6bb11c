// Loading preference pairs from a source: rows read, formats detected per file, pairs checked,
// degenerate pairs counted and dropped, everything tallied in a DataReport.
import { DpoError } from '../errors';
import { builtinPreferenceDataset } from './builtin';
import {
  ASSISTANT_TAG,
  DEFAULT_CHAT_TEMPLATE,
  DEFAULT_KEYS,
  detectFormat,
  FieldKeys,
  rowToPair,
} from './formats';
import { readRows, resolveSource, SourceOptions } from './read';
import { sameIds } from './tokenize';
import { ChatTemplate, DataReport, FileReport, PreferencePair, RowFormat } from './types';

export interface LoadOptions extends SourceOptions {
  promptKey?: string;
  chosenKey?: string;
  rejectedKey?: string;
  skipBadRows?: boolean; // count and skip malformed rows instead of throwing
  keepDegenerate?: boolean; // keep identical, empty and prefix pairs (counted either way)
  chatTemplate?: ChatTemplate; // for conversational rows; default Human/Assistant turns
  assistantTag?: string; // where an implicit prompt ends; default "\n\nAssistant:"
}

/** The built-in dataset as a source name. */
export const BUILTIN_SOURCE = 'builtin:arithmetic';
const MAX_BAD_MESSAGES = 5;

export type Degeneracy = 'identical' | 'empty' | 'prefix' | undefined;

export function degeneracy(pair: PreferencePair): Degeneracy {
  if (pair.kind === 'ids') {
    if (sameIds(pair.chosenIds, pair.rejectedIds)) return 'identical';
    if (pair.chosenIds.length === 0 || pair.rejectedIds.length === 0) return 'empty';
    const [a, b] = [pair.chosenIds, pair.rejectedIds];
    const short = a.length < b.length ? a : b;
    const long = a.length < b.length ? b : a;
    return short.every((id, i) => id === long[i]) ? 'prefix' : undefined;
  }
  if (pair.chosen === pair.rejected) return 'identical';
  if (pair.chosen.trim() === '' || pair.rejected.trim() === '') return 'empty';
  if (pair.chosen.startsWith(pair.rejected) || pair.rejected.startsWith(pair.chosen))
    return 'prefix';
  return undefined;
}

/**
 * Reads a file, a folder, a hub dataset in the local cache, or several of them, into pairs.
 * Throws a DpoError (ERR_DPO_DATA) naming file and line for the first bad row unless skipBadRows.
 */
export async function loadPreferencePairs(
  source: string | readonly string[],
  opts: LoadOptions = {},
): Promise<{ pairs: PreferencePair[]; report: DataReport }> {
  const pairs: PreferencePair[] = [];
  const report = await forEachPreferencePair(source, opts, (pair) => pairs.push(pair));
  return { pairs, report };
}

/**
 * Streams the pairs of a source to `onPair`, one at a time, and returns the report: what a file
 * larger than memory needs (`dpo data inspect` reads this way).
 */
export async function forEachPreferencePair(
  source: string | readonly string[],
  opts: LoadOptions,
  onPair: (pair: PreferencePair) => void,
): Promise<DataReport> {
  const keys: FieldKeys = {
    prompt: opts.promptKey ?? DEFAULT_KEYS.prompt,
    chosen: opts.chosenKey ?? DEFAULT_KEYS.chosen,
    rejected: opts.rejectedKey ?? DEFAULT_KEYS.rejected,
  };
  const ctx = {
    keys,
    template: opts.chatTemplate ?? DEFAULT_CHAT_TEMPLATE,
    assistantTag: opts.assistantTag ?? ASSISTANT_TAG,
  };
  const report: DataReport = {
    files: [],
    rows: 0,
    pairs: 0,
    badRows: 0,
    badRowMessages: [],
    divergedBeforeLastTurn: 0,
    identical: 0,
    emptyResponse: 0,
    prefixResponse: 0,
    degenerateKept: !!opts.keepDegenerate,
  };
  const bad = (err: unknown) => {
    if (!(err instanceof DpoError) || err.code !== 'ERR_DPO_DATA' || !opts.skipBadRows) throw err;
    report.badRows++;
    if (report.badRowMessages.length < MAX_BAD_MESSAGES) report.badRowMessages.push(err.message);
  };
  const keep = (pair: PreferencePair) => {
    const kind = degeneracy(pair);
    if (kind === 'identical') report.identical++;
    if (kind === 'empty') report.emptyResponse++;
    if (kind === 'prefix') report.prefixResponse++;
    if (kind === undefined || opts.keepDegenerate) {
      report.pairs++;
      onPair(pair);
    }
  };

  for (const name of typeof source === 'string' ? [source] : source) {
    if (name === BUILTIN_SOURCE) {
      const builtin = builtinPreferenceDataset();
      report.files.push({ file: name, format: 'builtin', rows: builtin.length });
      report.rows += builtin.length;
      builtin.forEach(keep);
      continue;
    }
    for (const file of await resolveSource(name, opts)) {
      const fileReport: FileReport = { file, format: 'empty', rows: 0 };
      report.files.push(fileReport);
      let format: RowFormat | undefined;
      for await (const row of readRows(file)) {
        fileReport.rows++;
        report.rows++;
        try {
          if ('error' in row) throw row.error;
          format ??= detectFormat(row.value, row.where, keys);
          const { pair, diverged } = rowToPair(row.value, format, row.where, ctx);
          if (diverged) report.divergedBeforeLastTurn++;
          keep(pair);
        } catch (err) {
          bad(err);
        }
      }
      fileReport.format = format ?? 'empty';
    }
  }
  return report;
}
