// Tests for reading preference data: every format, folders, splits, the hub cache, Parquet,
// gzip, the real HH-RLHF file, and the exact message of each bad-input case.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { loadPreferencePairs, PreferencePair, TextPair } from '../src/data';

const FIX = path.join(__dirname, 'fixtures', 'data');
const HH = path.resolve(__dirname, '../../shared/data/hh-rlhf-harmless-base-test.jsonl.gz');
const text = (p: PreferencePair) => p as TextPair;

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-data-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('explicit prompt, with degenerate pairs counted and dropped', async (t) => {
  const file = path.join(FIX, 'explicit.jsonl');
  const { pairs, report } = await loadPreferencePairs(file);
  t.same(report.files, [{ file, format: 'explicit', rows: 4 }]);
  t.equal(report.rows, 4);
  t.equal(report.pairs, 2);
  t.equal(report.identical, 1);
  t.equal(report.prefixResponse, 1);
  t.equal(report.emptyResponse, 0);
  t.same(pairs[1], {
    kind: 'text',
    prompt: '\n\nHuman: Say hi.\n\nAssistant: ',
    chosen: 'Hi!',
    rejected: 'No.',
    origin: `${file}:2`,
  });
  const kept = await loadPreferencePairs(file, { keepDegenerate: true });
  t.equal(kept.report.pairs, 4);
  t.equal(kept.report.identical, 1, 'counted when kept too');
  t.equal(text(kept.pairs[3]).origin, `${file}:5`, 'the line number counts the blank line');
});

t.test('implicit prompt (HH-RLHF transcripts) ends on the shared assistant turn', async (t) => {
  const { pairs, report } = await loadPreferencePairs(path.join(FIX, 'implicit.jsonl'));
  t.equal(report.files[0].format, 'implicit');
  t.equal(report.pairs, 3);
  t.equal(report.divergedBeforeLastTurn, 1);
  t.equal(report.prefixResponse, 1);
  t.same(
    [text(pairs[0]).prompt, text(pairs[0]).chosen, text(pairs[0]).rejected],
    ['\n\nHuman: Hi\n\nAssistant:', ' Hello! How can I help?', ' Go away.'],
  );
  t.equal(
    text(pairs[1]).prompt,
    '\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Tell a joke\n\nAssistant:',
  );
  t.equal(text(pairs[1]).rejected, ' No.');
  // Diverged at the first assistant turn: split there, the rest of each transcript completes it.
  t.same(
    [text(pairs[2]).prompt, text(pairs[2]).chosen, text(pairs[2]).rejected],
    [
      '\n\nHuman: Hi\n\nAssistant:',
      ' Hello.\n\nHuman: Joke?\n\nAssistant: Sure.',
      ' Bye.\n\nHuman: Why?\n\nAssistant: Because.',
    ],
  );
  // Row 4 shares the characters "Assist" after the tag: the prompt still ends at the tag.
  const all = await loadPreferencePairs(path.join(FIX, 'implicit.jsonl'), { keepDegenerate: true });
  t.same(
    [text(all.pairs[3]).prompt, text(all.pairs[3]).rejected],
    ['\n\nHuman: Assistants?\n\nAssistant:', ' Assist'],
  );
});

t.test(
  'conversational rows in a JSON array, rendered with the default and a custom template',
  async (t) => {
    const file = path.join(FIX, 'conversational.json');
    const { pairs, report } = await loadPreferencePairs(file);
    t.equal(report.files[0].format, 'conversational');
    t.same(
      pairs.map(text).map((p) => [p.prompt, p.chosen, p.rejected, p.origin]),
      [
        ['\n\nHuman: Hi\n\nAssistant:', ' Hello!', ' What?', `${file} [row 0] (line 2)`],
        [
          '\n\nSystem: Be brief.\n\nHuman: Sky color?\n\nAssistant:',
          ' Blue.',
          ' The sky, which is a thing, is often blue, [sic] "quoted".',
          `${file} [row 1] (line 4)`,
        ],
      ],
    );
    const template = {
      renderPrompt: (ms: readonly { role: string; content: string }[]) =>
        ms.map((m) => `<${m.role}>${m.content}`).join('') + '<assistant>',
      renderCompletion: (ms: readonly { role: string; content: string }[]) =>
        ms.map((m) => m.content).join(''),
    };
    const custom = await loadPreferencePairs(file, { chatTemplate: template });
    t.same(
      [text(custom.pairs[0]).prompt, text(custom.pairs[0]).chosen],
      ['<user>Hi<assistant>', 'Hello!'],
    );
  },
);

t.test('a JSON array larger than one read chunk streams element by element', async (t) => {
  // Strings full of the scanner's hazards: brackets, commas, braces, escaped quotes, newlines.
  const rows = Array.from({ length: 3000 }, (_, i) => ({
    prompt: `[${i}], {"x": "\\"}\n`,
    chosen: ` ok ${i} ]},[`,
    rejected: ` no \"${i}\" é😀`,
  }));
  const file = path.join(tmpDir(t), 'big.json');
  fs.writeFileSync(file, JSON.stringify(rows, null, 1));
  t.ok(fs.statSync(file).size > 4 * 65536, 'several stream chunks');
  const { pairs, report } = await loadPreferencePairs(file);
  t.equal(report.pairs, 3000);
  t.same(
    pairs.map(text).map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })),
    rows,
  );
});

t.test('pre-tokenized rows', async (t) => {
  const { pairs, report } = await loadPreferencePairs(path.join(FIX, 'pretokenized.jsonl'));
  t.equal(report.files[0].format, 'pretokenized');
  t.same(
    pairs.map((p) => p.kind === 'ids' && [p.promptIds, p.chosenIds, p.rejectedIds]),
    [
      [
        [15496, 11],
        [995, 0],
        [995, 30],
      ],
      [[], [40, 50256], [1639]],
    ],
  );
});

t.test('field names mapped', async (t) => {
  const file = path.join(FIX, 'mapped.jsonl');
  const { pairs } = await loadPreferencePairs(file, {
    promptKey: 'question',
    chosenKey: 'good',
    rejectedKey: 'bad',
  });
  t.same(pairs[0], {
    kind: 'text',
    prompt: 'Best pet?',
    chosen: ' A cat.',
    rejected: ' A rock.',
    origin: `${file}:1`,
  });
  await t.rejects(loadPreferencePairs(file), {
    code: 'ERR_DPO_DATA',
    message: `${file}:1: expected fields "chosen" and "rejected" (and "prompt" if the prompt is separate), got fields "question", "good", "bad"; name yours with --prompt-key, --chosen-key, --rejected-key`,
  });
});

t.test('a folder split by file name, gzip, and several sources', async (t) => {
  const dir = path.join(FIX, 'split');
  const train = await loadPreferencePairs(dir);
  t.same(
    train.report.files.map((f) => path.basename(f.file)),
    ['train.jsonl'],
    'train by default',
  );
  const test = await loadPreferencePairs(dir, { split: 'test' });
  t.equal(test.report.pairs, 2);
  await t.rejects(loadPreferencePairs(dir, { split: 'validation' }), {
    code: 'ERR_DPO_NOT_FOUND',
    message: `expected files named for split "validation" in ${dir}, got test.jsonl, train.jsonl; pick a split these names show`,
  });

  const tmp = tmpDir(t);
  const gz = path.join(tmp, 'explicit.jsonl.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(path.join(FIX, 'explicit.jsonl'))));
  const both = await loadPreferencePairs([gz, path.join(FIX, 'mapped.jsonl')], {
    promptKey: 'prompt',
    skipBadRows: true,
  });
  t.equal(both.report.pairs, 2);
  t.equal(both.report.badRows, 1, 'the mapped file does not fit the default keys');
});

t.test('a hub dataset resolves to the local Hugging Face cache, never a download', async (t) => {
  const cache = tmpDir(t);
  const repo = path.join(cache, 'datasets--Anthropic--hh-rlhf');
  const snap = path.join(repo, 'snapshots', 'abc123', 'harmless-base');
  fs.mkdirSync(snap, { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), 'abc123');
  const row = JSON.stringify({
    chosen: '\n\nHuman: a\n\nAssistant: b',
    rejected: '\n\nHuman: a\n\nAssistant: c',
  });
  fs.writeFileSync(path.join(snap, 'train.jsonl.gz'), zlib.gzipSync(row + '\n'));
  fs.writeFileSync(path.join(snap, 'test.jsonl.gz'), zlib.gzipSync(row + '\n' + row + '\n'));

  const opts = { hfCache: cache, dataDir: 'harmless-base' };
  t.equal((await loadPreferencePairs('Anthropic/hh-rlhf', opts)).report.pairs, 1);
  t.equal(
    (await loadPreferencePairs('Anthropic/hh-rlhf', { ...opts, split: 'test' })).report.pairs,
    2,
  );
  await t.rejects(
    loadPreferencePairs('Anthropic/hh-rlhf', { hfCache: cache, dataDir: 'helpful-base' }),
    {
      code: 'ERR_DPO_NOT_FOUND',
      message: `expected dataset Anthropic/hh-rlhf (helpful-base) in the Hugging Face cache at ${repo}, got none; fetch it with: huggingface-cli download Anthropic/hh-rlhf --repo-type dataset --include "helpful-base/*" (node-dpo never downloads)`,
    },
  );
  await t.rejects(loadPreferencePairs('nobody/nothing', { hfCache: cache }), {
    code: 'ERR_DPO_NOT_FOUND',
  });
});

t.test('Parquet, written by hyparquet-writer and read a row group at a time', async (t) => {
  const { parquetWriteBuffer } = require('hyparquet-writer') as typeof import('hyparquet-writer');
  const n = 25;
  const buf = parquetWriteBuffer({
    columnData: [
      {
        name: 'prompt',
        data: Array.from({ length: n }, (_, i) => `\n\nHuman: ${i}?\n\nAssistant:`),
      },
      { name: 'chosen', data: Array.from({ length: n }, (_, i) => ` ${i} ✓`) },
      { name: 'rejected', data: Array.from({ length: n }, (_, i) => ` ${i + 1} ✗`) },
    ],
    rowGroupSize: 10,
  });
  const file = path.join(tmpDir(t), 'train-00000-of-00001.parquet');
  fs.writeFileSync(file, Buffer.from(buf));
  const { pairs, report } = await loadPreferencePairs(file);
  t.same(report.files, [{ file, format: 'explicit', rows: n }]);
  t.same(pairs[24], {
    kind: 'text',
    prompt: '\n\nHuman: 24?\n\nAssistant:',
    chosen: ' 24 ✓',
    rejected: ' 25 ✗',
    origin: `${file} [row 24]`,
  });
});

t.test('the real HH-RLHF harmless-base test file, read in full', async (t) => {
  const { pairs, report } = await loadPreferencePairs(HH);
  // Counts computed independently (a Python script with the same split rule) and pinned here.
  t.same(report.files, [{ file: HH, format: 'implicit', rows: 2312 }]);
  t.equal(report.rows, 2312);
  t.equal(report.pairs, 2307);
  t.equal(report.emptyResponse, 4);
  t.equal(report.prefixResponse, 1);
  t.equal(report.identical, 0);
  t.equal(report.divergedBeforeLastTurn, 5);
  t.equal(report.badRows, 0);
  t.ok(pairs.every((p) => p.kind === 'text' && p.prompt.endsWith('\n\nAssistant:')));
});

t.test('bad input: the exact message, with file and line or row', async (t) => {
  const dir = tmpDir(t);
  const write = (name: string, body: string | Buffer) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    return file;
  };
  const good = '{"prompt": "p", "chosen": " a", "rejected": " b"}';
  const cases: Array<[string, string | Buffer, (f: string) => string]> = [
    [
      'notjson.jsonl',
      `${good}\n{"prompt": "p", "chosen": " a",\n`,
      (f) =>
        `${f}:2: expected a JSON object, got text that is not JSON (${jsonError('{"prompt": "p", "chosen": " a",')}); fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'missing.jsonl',
      `${good}\n{"prompt": "p", "chosen": " a", "rejectd": " b"}\n`,
      (f) =>
        `${f}:2: expected fields "prompt", "chosen", "rejected" (as in the file's first row), got fields "prompt", "chosen", "rejectd"; map yours with --prompt-key, --chosen-key, --rejected-key, or fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'type.jsonl',
      `${good}\n{"prompt": "p", "chosen": 42, "rejected": " b"}\n`,
      (f) =>
        `${f}:2: expected "chosen" to be a string, got number; fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'array.jsonl',
      `${good}\n[1, 2]\n`,
      (f) =>
        `${f}:2: expected a JSON object, got an array; fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'utf8.jsonl',
      Buffer.concat([
        Buffer.from(`${good}\n{"prompt": "caf`),
        Buffer.from([0xe9]),
        Buffer.from('", "chosen": " a", "rejected": " b"}\n'),
      ]),
      (f) =>
        `${f}:2: expected UTF-8 text, got bytes that are not UTF-8 (near character 15); re-encode the file as UTF-8, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'noturn.jsonl',
      '{"chosen": "Human: a", "rejected": "Human: b"}\n',
      (f) =>
        `${f}:1: expected "chosen" and "rejected" to share a turn ending in "\\n\\nAssistant:", got none; give the row an explicit "prompt" field, or fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'ids.jsonl',
      '{"prompt_input_ids": [1], "chosen_input_ids": [2.5], "rejected_input_ids": [3]}\n',
      (f) =>
        `${f}:1: expected "chosen_input_ids"[0] to be a token id (an integer >= 0), got 2.5; fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'messages.json',
      '[{"chosen": [{"role": "user"}], "rejected": []}]',
      (f) =>
        `${f} [row 0] (line 1): expected "chosen"[0] to be a {role, content} message with string fields, got {"role":"user"}; fix the row, or skip bad rows with --skip-bad-rows (skipBadRows)`,
    ],
    [
      'cut.json',
      `[${good},\n${good}`,
      (f) =>
        `${f} [row 1] (line 2): expected the array to close with ], got the end of the file; the file is cut short; restore it`,
    ],
  ];
  for (const [name, body, message] of cases) {
    const file = write(name, body);
    await t.rejects(
      loadPreferencePairs(file),
      { code: 'ERR_DPO_DATA', message: message(file) },
      name,
    );
  }
  // --skip-bad-rows turns each into a counted skip and keeps the good rows.
  const skipped = await loadPreferencePairs(
    cases.slice(0, 5).map(([name]) => path.join(dir, name)),
    { skipBadRows: true },
  );
  t.equal(skipped.report.badRows, 5);
  t.equal(skipped.report.pairs, 5);
  t.equal(skipped.report.badRowMessages.length, 5);
  await t.rejects(loadPreferencePairs(path.join(dir, 'nope.jsonl')), { code: 'ERR_DPO_NOT_FOUND' });
});

function jsonError(s: string): string {
  try {
    JSON.parse(s);
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

t.test('a truncated .jsonl.gz names the file and says the gzip data is cut', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-gz-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rows = Array.from({ length: 200 }, (_, i) =>
    JSON.stringify({ prompt: `p${i}`, chosen: ' yes', rejected: ' no' }),
  ).join('\n');
  const gz = zlib.gzipSync(Buffer.from(rows));
  const file = path.join(dir, 'cut.jsonl.gz');
  fs.writeFileSync(file, gz.subarray(0, Math.floor(gz.length / 2)));
  await t.rejects(loadPreferencePairs(file), {
    code: 'ERR_DPO_DATA',
    message: `${file}: the gzip data is truncated or corrupt (unexpected end of file); download or compress the file again`,
  });
});
