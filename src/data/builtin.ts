// The built-in preference dataset: single-digit arithmetic whose right answer a program computes,
// so a demo can measure the learned preference, not only a falling loss.
import { DpoError } from '../errors';
import { seededRandom } from './batch';
import type { TextPair } from './types';

// "\n\nHuman: 3+4=?\n\nAssistant:" is 10 GPT-2 tokens; " 7" + end-of-text is 2.
const PROMPT = /^\n\nHuman: (\d)([+-])(\d)=\?\n\nAssistant:$/;

export function builtinPrompt(a: number, op: '+' | '-', b: number): string {
  return `\n\nHuman: ${a}${op}${b}=?\n\nAssistant:`;
}

/**
 * n pairs: a+b with digits a, b in 0..9, and a-b with a >= b. Chosen is the right answer, rejected
 * a near miss (off by 1 to 3, never negative), each a single GPT-2 token such as " 7" or " 12".
 */
export function builtinPreferenceDataset(opts: { seed?: number; n?: number } = {}): TextPair[] {
  const n = opts.n ?? 2000;
  if (!Number.isInteger(n) || n < 1) {
    throw new DpoError('ERR_DPO_CONFIG', `expected n to be an integer >= 1, got ${n}; e.g. 2000`);
  }
  const rand = seededRandom(opts.seed ?? 0);
  const digit = () => Math.floor(rand() * 10);
  const pairs: TextPair[] = [];
  for (let i = 0; i < n; i++) {
    let a = digit();
    let b = digit();
    const op = rand() < 0.5 ? '+' : '-';
    if (op === '-' && a < b) [a, b] = [b, a];
    const answer = op === '+' ? a + b : a - b;
    let wrong = answer;
    while (wrong === answer || wrong < 0)
      wrong = answer + (rand() < 0.5 ? -1 : 1) * (1 + Math.floor(rand() * 3));
    pairs.push({
      kind: 'text',
      prompt: builtinPrompt(a, op, b),
      chosen: ` ${answer}`,
      rejected: ` ${wrong}`,
      origin: `builtin:arithmetic [row ${i}]`,
    });
  }
  return pairs;
}

/** The right answer to a built-in prompt; throws for any other prompt. */
export function builtinAnswer(prompt: string): number {
  const m = PROMPT.exec(prompt);
  if (!m) {
    throw new DpoError(
      'ERR_DPO_DATA',
      `expected a built-in arithmetic prompt such as ${JSON.stringify(builtinPrompt(3, '+', 4))}, ` +
        `got ${JSON.stringify(prompt)}; score only prompts from builtinPreferenceDataset()`,
    );
  }
  const a = Number(m[1]);
  const b = Number(m[3]);
  return m[2] === '+' ? a + b : a - b;
}

/**
 * Scores a generated completion in [0, 1]: 1 when the reply, up to end-of-text or the next turn,
 * is the right number (surrounding spaces and a final period allowed), 0.5 when the right number
 * comes first but more text follows, else 0.
 */
export function scoreBuiltinCompletion(prompt: string, completion: string): number {
  const answer = builtinAnswer(prompt);
  const reply = completion.split('<|endoftext|>')[0].split('\n\n')[0];
  const m = /^\s*(-?\d+)/.exec(reply);
  if (!m || Number(m[1]) !== answer) return 0;
  return /^\s*\.?\s*$/.test(reply.slice(m[0].length)) ? 1 : 0.5;
}
