// Tests for tokenizing and batching pairs: the boundary rule, end-of-text, truncation, masks,
// seeded order, the held-out split, the built-in dataset and `dpo data inspect`.
import t from 'tap';
import * as path from 'path';
import {
  BOUNDARY_MARK,
  builtinPreferenceDataset,
  builtinPrompt,
  encodePromptCompletion,
  formatInspectReport,
  inspectData,
  makeBatches,
  makeSftBatches,
  PreferencePair,
  scoreBuiltinCompletion,
  splitEval,
  tokenizePairs,
  TokenizedPair,
  truncatePairs,
} from '../src/data';
import { defaultTokenizer } from '../src/tokenizer';
import { buildProgram } from '../src/cli/main';

const tok = defaultTokenizer();
const EOS = 50256;
const pair = (prompt: string, chosen: string, rejected: string): PreferencePair => ({
  kind: 'text',
  prompt,
  chosen,
  rejected,
  origin: 'test',
});

t.test(
  'boundary: prompt + completion ids are the ids of the joint text, split on a token edge',
  async (t) => {
    const cases: Array<[string, string]> = [
      ['\n\nHuman: Hi\n\nAssistant:', ' Hello there'], // the usual case: the space goes with the word
      ['\n\nHuman: Hi\n\nAssistant: ', 'Hello there'], // prompt ends in a space
      ['Question:\n\n', 'Answer'], // prompt ends in a newline run
      ['Q:  \t', ' x'], // mixed whitespace, and a completion that starts with a space too
      ['日本語:', ' 答え😀'],
    ];
    for (const [prompt, completion] of cases) {
      const { promptIds, completionIds, merged } = encodePromptCompletion(tok, prompt, completion);
      t.notOk(merged, JSON.stringify(prompt));
      t.same(
        [...promptIds, ...completionIds],
        tok.encode(prompt + completion),
        JSON.stringify(prompt),
      );
      t.equal(tok.decode(promptIds) + tok.decode(completionIds), prompt + completion);
    }
    // The space the prompt ended with is the completion's first token's: " Hello" (18435).
    const r = encodePromptCompletion(tok, 'Assistant: ', 'Hello');
    t.same(r.promptIds, [48902, 25]);
    t.same(r.completionIds, [18435]);
    // A prompt cut inside a word cannot split on a token edge: kept apart, and reported.
    const cut = encodePromptCompletion(tok, 'Hel', 'lo world');
    t.ok(cut.merged);
    t.equal(tok.decode([...cut.promptIds, ...cut.completionIds]), 'Hello world');
    const { report } = tokenizePairs([pair('Hel', 'lo world', 'p me')], tok);
    t.equal(report.boundaryMerges, 1);
  },
);

t.test('end-of-text is appended once, and a final end-of-text is scored by the mask', async (t) => {
  const { pairs } = tokenizePairs(
    [
      pair('Hi', ' there', ' you<|endoftext|>'),
      { kind: 'ids', promptIds: [], chosenIds: [40], rejectedIds: [40, 1639, EOS], origin: 'ids' },
    ],
    tok,
  );
  t.same(pairs[0].chosenIds, [612, EOS]);
  t.same(pairs[0].rejectedIds, [345, EOS], 'not doubled');
  t.same(pairs[1].promptIds, [EOS], 'an empty prompt becomes the start-of-text token');
  const [batch] = makeBatches(pairs, { batchSize: 2, shuffle: false });
  // Rows: chosen_0, chosen_1, rejected_0, rejected_1. The pad id equals EOS, yet lengths decide.
  t.equal(batch.rows, 4);
  t.equal(batch.pairs, 2);
  t.equal(batch.T, 4);
  t.same([...batch.lengths], [3, 3, 3, 4]);
  t.same([...batch.promptLengths], [1, 1, 1, 1]);
  t.same(
    [...batch.inputIds],
    [17250, 612, EOS, EOS, EOS, 40, EOS, EOS, 17250, 345, EOS, EOS, EOS, 40, 1639, EOS],
  );
  // mask[r][t] = 1 iff token t+1 is a completion token: the last EOS of each row is scored,
  // the padding EOS after it is not.
  t.same([...batch.completionMask], [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
  const [sft] = makeSftBatches(pairs, { batchSize: 2, shuffle: false });
  t.equal(sft.rows, 2);
  t.equal(sft.T, 3);
  t.same([...sft.inputIds], [17250, 612, EOS, EOS, 40, EOS]);
  t.same([...sft.completionMask], [1, 1, 0, 1, 1, 0]);
});

t.test(
  'truncation: prompt kept at its start or end, completions cut, empty completions dropped',
  async (t) => {
    const tp: TokenizedPair = {
      promptIds: [1, 2, 3, 4, 5, 6],
      chosenIds: [10, 11, 12, EOS],
      rejectedIds: [20, EOS],
    };
    const end = truncatePairs([tp], { maxPromptLength: 4, maxLength: 6 });
    t.same(end.kept, [
      { promptIds: [3, 4, 5, 6], chosenIds: [10, 11], rejectedIds: [20, EOS], origin: undefined },
    ]);
    t.same(
      [end.report.truncatedPrompt, end.report.truncatedChosen, end.report.truncatedRejected],
      [1, 1, 0],
    );
    const start = truncatePairs([tp], { maxPromptLength: 4, truncationMode: 'keep_start' });
    t.same(start.kept[0].promptIds, [1, 2, 3, 4]);
    t.same(start.kept[0].chosenIds, [10, 11, 12, EOS], 'no maxLength, no completion cut');
    // A prompt that fills maxLength leaves nothing to score: dropped and counted, never NaN.
    const empty = truncatePairs([tp], { maxLength: 6 });
    t.same(empty.kept, []);
    t.equal(empty.report.droppedEmptyCompletion, 1);
    // Completions that share their first tokens become identical when cut: dropped unless kept.
    const same: TokenizedPair = {
      promptIds: [1],
      chosenIds: [7, 8, EOS],
      rejectedIds: [7, 9, EOS],
    };
    t.equal(truncatePairs([same], { maxLength: 2 }).report.identicalAfterTruncation, 1);
    t.equal(truncatePairs([same], { maxLength: 2 }).kept.length, 0);
    t.equal(truncatePairs([same], { maxLength: 2, keepDegenerate: true }).kept.length, 1);
    t.throws(() => truncatePairs([tp], { maxLength: 0 }), {
      code: 'ERR_DPO_CONFIG',
      message: 'expected maxLength to be an integer >= 1, got 0; it counts tokens, e.g. 512',
    });
    t.throws(() => truncatePairs([tp], { truncationMode: 'middle' as 'keep_end' }), {
      code: 'ERR_DPO_CONFIG',
      message:
        'expected truncationMode to be "keep_start" or "keep_end", got "middle"; keep_end keeps the prompt\'s last tokens, next to the completion',
    });
  },
);

t.test('batches: seeded order, grouping by length, every pair once', async (t) => {
  const pairs: TokenizedPair[] = Array.from({ length: 50 }, (_, i) => ({
    promptIds: Array(1 + (i % 7)).fill(i),
    chosenIds: [i, EOS],
    rejectedIds: Array(1 + (i % 5)).fill(i),
  }));
  const ids = (bs: ReturnType<typeof makeBatches>) => bs.map((b) => [...b.inputIds]);
  const a = makeBatches(pairs, { batchSize: 8, seed: 3 });
  t.same(ids(a), ids(makeBatches(pairs, { batchSize: 8, seed: 3 })), 'same seed, same batches');
  t.notSame(ids(a), ids(makeBatches(pairs, { batchSize: 8, seed: 4 })));
  t.same(
    a.map((b) => b.pairs),
    [8, 8, 8, 8, 8, 8, 2],
  );
  t.same(makeBatches(pairs, { batchSize: 8, dropLast: true }).length, 6);
  const seen = (bs: ReturnType<typeof makeBatches>) =>
    bs
      .flatMap((b) => Array.from({ length: b.pairs }, (_, r) => b.inputIds[r * b.T]))
      .sort((x, y) => x - y);
  const grouped = makeBatches(pairs, { batchSize: 8, seed: 3, groupByLength: true });
  t.same(
    seen(grouped),
    pairs.map((_, i) => i),
    'grouping keeps every pair once',
  );
  const padding = (bs: ReturnType<typeof makeBatches>) =>
    bs.reduce((s, b) => s + b.rows * b.T - b.lengths.reduce((x, y) => x + y, 0), 0);
  t.ok(
    padding(grouped) < padding(a),
    `grouping cuts padding (${padding(grouped)} < ${padding(a)})`,
  );
  t.equal(makeBatches(pairs, { batchSize: 8, padToMultipleOf: 8 })[0].T % 8, 0);
  t.throws(() => makeBatches(pairs, { batchSize: 0 }), {
    code: 'ERR_DPO_CONFIG',
    message: 'expected batchSize to be an integer >= 1, got 0; pairs per batch, e.g. 8',
  });
});

t.test('held-out split', async (t) => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  const { train, eval: held } = splitEval(items, { fraction: 0.05, seed: 1 });
  t.equal(held.length, 5);
  t.equal(train.length, 95);
  t.same(
    [...train, ...held].sort((a, b) => a - b),
    items,
  );
  t.same(splitEval(items, { fraction: 0.05, seed: 1 }).eval, held, 'deterministic');
  t.equal(splitEval([1, 2, 3], { fraction: 0.01 }).eval.length, 1, 'at least one');
  t.throws(() => splitEval(items, { fraction: 1.5 }), {
    code: 'ERR_DPO_CONFIG',
    message: 'expected evalSplit to be a fraction in (0, 1), got 1.5; e.g. 0.05 holds out 5%',
  });
});

t.test('built-in arithmetic dataset: short, checkable, deterministic', async (t) => {
  const data = builtinPreferenceDataset({ seed: 7, n: 500 });
  t.equal(data.length, 500);
  t.same(builtinPreferenceDataset({ seed: 7, n: 500 }), data);
  for (const p of data) {
    t.equal(scoreBuiltinCompletion(p.prompt, p.chosen), 1, p.prompt);
    t.equal(scoreBuiltinCompletion(p.prompt, p.rejected), 0, p.prompt);
  }
  const { pairs } = tokenizePairs(data, tok);
  const longest = Math.max(
    ...pairs.map((p) => p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length)),
  );
  t.ok(longest <= 16, `every sequence is short (${longest} tokens)`);
  t.ok(
    pairs.every((p) => p.chosenIds.length === 2),
    'each answer is one token + end-of-text',
  );
  // The checker reads free-form generations.
  const prompt = builtinPrompt(9, '+', 8);
  t.equal(scoreBuiltinCompletion(prompt, ' 17<|endoftext|>'), 1);
  t.equal(scoreBuiltinCompletion(prompt, ' 17.\n\nHuman: more'), 1);
  t.equal(scoreBuiltinCompletion(prompt, ' 17 apples'), 0.5);
  t.equal(scoreBuiltinCompletion(prompt, ' 171'), 0);
  t.equal(scoreBuiltinCompletion(prompt, ' seventeen'), 0);
  t.equal(scoreBuiltinCompletion(builtinPrompt(3, '-', 3), '0'), 1);
  t.throws(() => scoreBuiltinCompletion('What is 2+2?', ' 4'), {
    code: 'ERR_DPO_DATA',
    message:
      'expected a built-in arithmetic prompt such as "\\n\\nHuman: 3+4=?\\n\\nAssistant:", got "What is 2+2?"; score only prompts from builtinPreferenceDataset()',
  });
});

t.test('inspect: report, text with the boundary marked, and the CLI command', async (t) => {
  const file = path.join(__dirname, 'fixtures', 'data', 'explicit.jsonl');
  const report = await inspectData(file, { maxLength: 40, examples: 2 });
  t.same(report.formats, ['explicit']);
  t.equal(report.data.pairs, 2);
  t.equal(report.lengths.prompt.count, 2);
  t.equal(
    report.examples[1].prompt + BOUNDARY_MARK + report.examples[1].chosen,
    '\n\nHuman: Say hi.\n\nAssistant:«|» Hi!<|endoftext|>',
    'the trailing space moved to the completion',
  );
  const text = formatInspectReport(report);
  t.match(text, /format explicit/);
  t.match(text, /identical chosen\/rejected  1 \(dropped\)/);

  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    out.push(String(chunk));
    return true;
  }) as typeof write;
  try {
    await buildProgram().parseAsync([
      'node',
      'dpo',
      'data',
      'inspect',
      file,
      '--json',
      '--examples',
      '1',
      '--max-length',
      '40',
      '--truncation-mode',
      'keep_start',
    ]);
  } finally {
    process.stdout.write = write;
  }
  const json = JSON.parse(out.join(''));
  t.equal(json.data.pairs, 2);
  t.equal(json.examples.length, 1);
  t.same(json.limits, { maxLength: 40, maxPromptLength: null, truncationMode: 'keep_start' });
});

t.test('HH-RLHF: every pair tokenizes to exactly the ids of its joint text', async (t) => {
  const { loadPreferencePairs } = await import('../src/data');
  const hh = path.resolve(__dirname, '../../shared/data/hh-rlhf-harmless-base-test.jsonl.gz');
  const { pairs: textPairs } = await loadPreferencePairs(hh);
  const { pairs, report } = tokenizePairs(textPairs, tok, { maxLength: 512, maxPromptLength: 256 });
  t.equal(report.boundaryMerges, 0);
  t.same(
    [
      report.truncatedPrompt,
      report.truncatedChosen,
      report.truncatedRejected,
      report.droppedEmptyCompletion,
    ],
    [277, 2, 12, 0],
  );
  t.equal(pairs.length, 2307);
  let mismatches = 0;
  const full = tokenizePairs(textPairs, tok).pairs;
  textPairs.forEach((p, i) => {
    if (p.kind !== 'text') return;
    const ids = [...full[i].promptIds, ...full[i].chosenIds.slice(0, -1)];
    if (ids.join() !== tok.encode(p.prompt + p.chosen).join()) mismatches++;
  });
  t.equal(mismatches, 0);
});
