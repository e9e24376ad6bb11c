// Row formats: explicit prompt, implicit prompt (HH-RLHF transcripts), conversational messages
// and pre-tokenized ids, each turned into one preference pair.
import { ChatMessage, ChatTemplate, dataError, PreferencePair, RowFormat, SKIP_FIX } from './types';

export interface FieldKeys {
  prompt: string;
  chosen: string;
  rejected: string;
}

export const DEFAULT_KEYS: FieldKeys = { prompt: 'prompt', chosen: 'chosen', rejected: 'rejected' };

/** The turn marker that ends an HH-RLHF prompt. */
export const ASSISTANT_TAG = '\n\nAssistant:';

const ROLE_LABELS: Record<string, string> = {
  user: 'Human',
  assistant: 'Assistant',
  system: 'System',
};

/** Human/Assistant turns, as in HH-RLHF: "\n\nHuman: ...\n\nAssistant: ...". */
export const DEFAULT_CHAT_TEMPLATE: ChatTemplate = {
  renderPrompt(messages) {
    return messages.map(renderTurn).join('') + ASSISTANT_TAG;
  },
  renderCompletion(messages) {
    // The first assistant turn continues the prompt's cue "\n\nAssistant:".
    return messages.map((m, i) => (i === 0 ? ` ${m.content}` : renderTurn(m))).join('');
  },
};

function renderTurn(m: ChatMessage): string {
  return `\n\n${ROLE_LABELS[m.role] ?? m.role}: ${m.content}`;
}

export interface RowContext {
  keys: FieldKeys;
  template: ChatTemplate;
  assistantTag: string;
}

export interface RowResult {
  pair: PreferencePair;
  diverged: boolean; // implicit prompt split at an earlier turn than the last
}

const idsKey = (key: string) => `${key}_input_ids`;

/** The format of a row, from the fields it has; throws naming the fields found when none fits. */
export function detectFormat(row: unknown, where: string, keys: FieldKeys): RowFormat {
  const obj = asObject(row, where);
  if (idsKey(keys.chosen) in obj && idsKey(keys.rejected) in obj) return 'pretokenized';
  if (!(keys.chosen in obj) || !(keys.rejected in obj)) throw missingFields(obj, where, keys);
  if (Array.isArray(obj[keys.chosen])) return 'conversational';
  return keys.prompt in obj ? 'explicit' : 'implicit';
}

/** One row to one pair, in the format detected for its file. */
export function rowToPair(
  row: unknown,
  format: RowFormat,
  where: string,
  ctx: RowContext,
): RowResult {
  const obj = asObject(row, where);
  const { keys } = ctx;
  switch (format) {
    case 'explicit':
    case 'builtin': {
      requireFields(obj, where, [keys.prompt, keys.chosen, keys.rejected]);
      const prompt = stringField(obj, keys.prompt, where);
      const chosen = stringField(obj, keys.chosen, where);
      const rejected = stringField(obj, keys.rejected, where);
      return { pair: { kind: 'text', prompt, chosen, rejected, origin: where }, diverged: false };
    }
    case 'implicit': {
      requireFields(obj, where, [keys.chosen, keys.rejected]);
      const chosen = stringField(obj, keys.chosen, where);
      const rejected = stringField(obj, keys.rejected, where);
      return splitTranscripts(chosen, rejected, where, ctx);
    }
    case 'conversational':
      return conversationalPair(obj, where, ctx);
    case 'pretokenized': {
      const names = [keys.prompt, keys.chosen, keys.rejected].map(idsKey);
      requireFields(obj, where, names);
      const [promptIds, chosenIds, rejectedIds] = names.map((n) => idsField(obj, n, where));
      return {
        pair: { kind: 'ids', promptIds, chosenIds, rejectedIds, origin: where },
        diverged: false,
      };
    }
  }
}

/**
 * Implicit prompt: the shared transcript up to and including the last assistant tag that lies
 * inside the common prefix of both transcripts. It always ends on a turn marker, never inside a
 * word. When that tag is not the last one of both transcripts, they diverged at an earlier turn.
 */
export function splitTranscripts(
  chosen: string,
  rejected: string,
  where: string,
  ctx: Pick<RowContext, 'assistantTag'>,
): RowResult {
  const tag = ctx.assistantTag;
  let common = 0;
  const n = Math.min(chosen.length, rejected.length);
  while (common < n && chosen.charCodeAt(common) === rejected.charCodeAt(common)) common++;
  const at = chosen.lastIndexOf(tag, common - tag.length);
  if (common < tag.length || at < 0) {
    throw dataError(
      where,
      `"chosen" and "rejected" to share a turn ending in ${JSON.stringify(tag)}`,
      'none',
      `give the row an explicit "prompt" field, or ${SKIP_FIX}`,
    );
  }
  const end = at + tag.length;
  const diverged = chosen.lastIndexOf(tag) !== at || rejected.lastIndexOf(tag) !== at;
  const pair: PreferencePair = {
    kind: 'text',
    prompt: chosen.slice(0, end),
    chosen: chosen.slice(end),
    rejected: rejected.slice(end),
    origin: where,
  };
  return { pair, diverged };
}

function conversationalPair(
  obj: Record<string, unknown>,
  where: string,
  ctx: RowContext,
): RowResult {
  const { keys, template } = ctx;
  requireFields(obj, where, [keys.chosen, keys.rejected]);
  let chosen = messagesField(obj, keys.chosen, where);
  let rejected = messagesField(obj, keys.rejected, where);
  let promptMessages: ChatMessage[];
  if (keys.prompt in obj && typeof obj[keys.prompt] === 'string') {
    promptMessages = [{ role: 'user', content: obj[keys.prompt] as string }];
  } else if (keys.prompt in obj) {
    promptMessages = messagesField(obj, keys.prompt, where);
  } else {
    // No prompt: the messages both conversations share are the prompt.
    let k = 0;
    while (k < chosen.length && k < rejected.length && sameMessage(chosen[k], rejected[k])) k++;
    while (k > 0 && chosen[k - 1]?.role === 'assistant' && chosen[k]?.role !== 'assistant') k--;
    promptMessages = chosen.slice(0, k);
    chosen = chosen.slice(k);
    rejected = rejected.slice(k);
  }
  for (const [name, list] of [
    [keys.chosen, chosen],
    [keys.rejected, rejected],
  ] as const) {
    if (list.length > 0 && list[0].role !== 'assistant') {
      throw dataError(
        where,
        `"${name}" to continue with an assistant message`,
        `role ${JSON.stringify(list[0].role)}`,
        SKIP_FIX,
      );
    }
  }
  const pair: PreferencePair = {
    kind: 'text',
    prompt: template.renderPrompt(promptMessages),
    chosen: chosen.length > 0 ? template.renderCompletion(chosen) : '',
    rejected: rejected.length > 0 ? template.renderCompletion(rejected) : '',
    origin: where,
  };
  return { pair, diverged: false };
}

const sameMessage = (a: ChatMessage, b: ChatMessage) =>
  a.role === b.role && a.content === b.content;

// ---------------------------------------------------------------------------------------------
// Field checks

function asObject(row: unknown, where: string): Record<string, unknown> {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw dataError(where, 'a JSON object', describe(row), SKIP_FIX);
  }
  return row as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

function missingFields(obj: Record<string, unknown>, where: string, keys: FieldKeys) {
  const found =
    Object.keys(obj)
      .map((k) => JSON.stringify(k))
      .join(', ') || 'no fields';
  return dataError(
    where,
    `fields "${keys.chosen}" and "${keys.rejected}" (and "${keys.prompt}" if the prompt is separate)`,
    `fields ${found}`,
    'name yours with --prompt-key, --chosen-key, --rejected-key',
  );
}

function requireFields(obj: Record<string, unknown>, where: string, names: string[]) {
  const missing = names.filter((n) => !(n in obj));
  if (missing.length === 0) return;
  const found =
    Object.keys(obj)
      .map((k) => JSON.stringify(k))
      .join(', ') || 'no fields';
  throw dataError(
    where,
    `fields ${names.map((n) => JSON.stringify(n)).join(', ')} (as in the file's first row)`,
    `fields ${found}`,
    `map yours with --prompt-key, --chosen-key, --rejected-key, or ${SKIP_FIX}`,
  );
}

function stringField(obj: Record<string, unknown>, name: string, where: string): string {
  const value = obj[name];
  if (typeof value !== 'string')
    throw dataError(where, `"${name}" to be a string`, describe(value), SKIP_FIX);
  return value;
}

function idsField(obj: Record<string, unknown>, name: string, where: string): number[] {
  const value = obj[name];
  const list = ArrayBuffer.isView(value)
    ? Array.from(value as unknown as ArrayLike<number>)
    : value;
  if (!Array.isArray(list))
    throw dataError(where, `"${name}" to be a list of token ids`, describe(value), SKIP_FIX);
  return list.map((id, i) => {
    const n = typeof id === 'bigint' ? Number(id) : id;
    if (!Number.isInteger(n) || n < 0) {
      throw dataError(
        where,
        `"${name}"[${i}] to be a token id (an integer >= 0)`,
        JSON.stringify(id) ?? describe(id),
        SKIP_FIX,
      );
    }
    return n as number;
  });
}

function messagesField(obj: Record<string, unknown>, name: string, where: string): ChatMessage[] {
  const value = obj[name];
  if (!Array.isArray(value)) {
    throw dataError(
      where,
      `"${name}" to be a list of {role, content} messages`,
      describe(value),
      SKIP_FIX,
    );
  }
  return value.map((m, i) => {
    const msg = m as Partial<ChatMessage> | null;
    if (
      !msg ||
      typeof msg !== 'object' ||
      typeof msg.role !== 'string' ||
      typeof msg.content !== 'string'
    ) {
      throw dataError(
        where,
        `"${name}"[${i}] to be a {role, content} message with string fields`,
        JSON.stringify(m) ?? describe(m),
        SKIP_FIX,
      );
    }
    return { role: msg.role, content: msg.content };
  });
}
