// Types shared by the preference-data pipeline: pairs as read, pairs as token ids, reports.
import { DpoError } from '../errors';

/** How the rows of one file state a preference; detected per file from its first row. */
export type RowFormat = 'explicit' | 'implicit' | 'conversational' | 'pretokenized' | 'builtin';

/** A pair as text: the prompt, and the two completions that follow it. */
export interface TextPair {
  kind: 'text';
  prompt: string;
  chosen: string;
  rejected: string;
  origin: string; // "file:line" or "file [row i]", for messages
}

/** A pair given as token ids (the pre-tokenized format). */
export interface IdsPair {
  kind: 'ids';
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  origin: string;
}

export type PreferencePair = TextPair | IdsPair;

export interface ChatMessage {
  role: string;
  content: string;
}

/** Renders conversational rows to text; GPT-2 has no chat template of its own. */
export interface ChatTemplate {
  /** The prompt turns, ending with the cue for the assistant's reply. */
  renderPrompt(messages: readonly ChatMessage[]): string;
  /** The completion turns, so that renderPrompt(p) + renderCompletion(c) is the transcript. */
  renderCompletion(messages: readonly ChatMessage[]): string;
}

export interface FileReport {
  file: string;
  format: RowFormat | 'empty';
  rows: number;
}

/** What reading did to the data: every row is counted in exactly one of pairs, bad, degenerate. */
export interface DataReport {
  files: FileReport[];
  rows: number; // rows read, bad ones included
  pairs: number; // pairs returned
  badRows: number; // rows skipped as malformed (skipBadRows)
  badRowMessages: string[]; // the first few of their messages
  divergedBeforeLastTurn: number; // implicit prompts split at an earlier shared assistant turn
  identical: number; // chosen === rejected
  emptyResponse: number; // a completion that is empty or only whitespace
  prefixResponse: number; // one completion a prefix of the other
  degenerateKept: boolean; // whether the three kinds above were kept (else dropped)
}

/** The ids the model scores: prompt, then each completion with end-of-text appended. */
export interface TokenizedPair {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  origin?: string;
}

export type TruncationMode = 'keep_start' | 'keep_end';

export interface TokenizeOptions {
  maxLength?: number; // prompt + completion, in tokens
  maxPromptLength?: number;
  truncationMode?: TruncationMode; // which end of the prompt to keep; default keep_end
  keepDegenerate?: boolean; // keep pairs whose completions became identical by truncation
}

export interface TokenizeReport {
  pairs: number; // pairs in
  kept: number; // pairs out
  boundaryMerges: number; // pairs whose prompt end and completion start would merge as one text
  truncatedPrompt: number;
  truncatedChosen: number;
  truncatedRejected: number;
  droppedEmptyCompletion: number; // a completion truncated to nothing: dropped, never scored
  identicalAfterTruncation: number;
}

/** The one message shape for bad data: where, what was expected, what came, the fix. */
export function dataError(where: string, expected: string, got: string, fix: string): DpoError {
  return new DpoError('ERR_DPO_DATA', `${where}: expected ${expected}, got ${got}; ${fix}`);
}

export const SKIP_FIX = 'fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)';
