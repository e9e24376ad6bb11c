// Tests for the GPT-2 tokenizer: known ids, round trips, save/load, tokenizer.json, bad files.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encode as referenceEncode } from 'gpt-tokenizer/encoding/r50k_base';
import { defaultTokenizer, loadTokenizer } from '../src/tokenizer';

const MIXED =
  '\n\nHuman: Où est la café? 日本語のテキスト 😀👍🏽 naïve façade — "quotes" 3.14159\n\n' +
  "Assistant: It's   here,\ttabs\tand  double  spaces.\r\n<|endoftext|>ünïcödé ∑∫ √2 " +
  "don't you'll we've I'm 12345678 $5.00 #hash @at   trailing   ";

t.test('known GPT-2 ids', async (t) => {
  const tok = defaultTokenizer();
  t.equal(tok.vocabSize, 50257);
  t.equal(tok.eosTokenId, 50256);
  t.equal(tok.padTokenId, 50256);
  t.same(tok.encode('Hello world'), [15496, 995]);
  t.same(tok.encode('<|endoftext|>'), [50256]);
  t.same(tok.encode('a<|endoftext|>b'), [64, 50256, 65]);
  t.same(tok.encode(''), []);
  t.equal(tok.decode([]), '');
  t.equal(defaultTokenizer(), tok, 'the default is cached');
  t.equal(await loadTokenizer(), tok, 'no folder gives the default');
});

t.test(
  'leading space merges into the next word (the data boundary rule relies on it)',
  async (t) => {
    const tok = defaultTokenizer();
    t.same(tok.encode(' world'), [995]);
    t.same(tok.encode('Assistant:'), [48902, 25]);
    t.same(tok.encode('Assistant: Hi'), [48902, 25, 15902]);
    t.same(tok.encode(' Hi'), [15902]);
    // A prompt ending in a space does not tokenize as a prefix of the whole text.
    t.same(tok.encode('Assistant: '), [48902, 25, 220]);
    t.same(tok.encode('\n\n'), [628]);
    t.same(tok.encode('\n\nHi'), [198, 198, 17250]);
  },
);

t.test('decode(encode(x)) === x on non-ASCII text', async (t) => {
  const tok = defaultTokenizer();
  const texts = [
    '😀 emoji 👨‍👩‍👧',
    '日本語と中文',
    'accents: é à ü ñ ø',
    '\n\nHuman: hi\n\nAssistant:',
    MIXED,
  ];
  for (const text of texts) t.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
});

t.test('agrees with an independent GPT-2 implementation (gpt-tokenizer r50k_base)', async (t) => {
  const tok = defaultTokenizer();
  for (const text of [MIXED, MIXED.repeat(3), '   leading', 'x\n\n\n  y']) {
    // The reference is given the text between end-of-text markers, so it never sees one.
    const expected = text
      .split('<|endoftext|>')
      .flatMap((part, i) => [...(i > 0 ? [50256] : []), ...referenceEncode(part)]);
    t.same(tok.encode(text), expected);
  }
});

t.test('decode rejects ids outside the vocabulary', async (t) => {
  t.throws(() => defaultTokenizer().decode([50257]), {
    code: 'ERR_DPO_TOKENIZER',
    message:
      "expected token id in [0, 50257), got 50257; ids come from this tokenizer's encode() or a model with the same vocabulary",
  });
});

t.test('save() writes a Hugging Face GPT-2 folder that loads back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-tok-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tok = defaultTokenizer();
  await tok.save(dir);
  t.same(fs.readdirSync(dir).sort(), [
    'merges.txt',
    'special_tokens_map.json',
    'tokenizer_config.json',
    'vocab.json',
  ]);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  t.equal(config.tokenizer_class, 'GPT2Tokenizer');
  t.equal(config.eos_token, '<|endoftext|>');
  const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n');
  t.equal(merges[0], '#version: 0.2');
  t.equal(merges[1], 'Ġ t');
  const loaded = await loadTokenizer(dir);
  t.not(loaded, tok, 'a fresh tokenizer, read from the folder');
  t.equal(loaded.vocabSize, 50257);
  t.equal(loaded.eosTokenId, 50256);
  t.same(loaded.encode(MIXED.repeat(2)), tok.encode(MIXED.repeat(2)));
});

t.test('a tokenizer.json folder loads', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-tokjson-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await defaultTokenizer().save(dir);
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  // The newer tokenizer.json layout: merges as pairs, the special token in added_tokens only.
  const merges = fs
    .readFileSync(path.join(dir, 'merges.txt'), 'utf8')
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((m) => m.split(' '));
  delete vocab['<|endoftext|>'];
  const json = {
    version: '1.0',
    added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false },
    decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', vocab, merges },
  };
  const jsonDir = path.join(dir, 'json');
  fs.mkdirSync(jsonDir);
  fs.writeFileSync(path.join(jsonDir, 'tokenizer.json'), JSON.stringify(json));
  const tok = await loadTokenizer(jsonDir);
  t.equal(tok.eosTokenId, 50256);
  t.same(tok.encode(MIXED), defaultTokenizer().encode(MIXED));
  t.equal(tok.decode(tok.encode(MIXED)), MIXED);
});

t.test('folders without tokenizer files, and bad folders', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-tokbad-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(await loadTokenizer(dir), defaultTokenizer(), 'an empty folder gives the default');

  const missing = path.join(dir, 'nope');
  await t.rejects(loadTokenizer(missing), {
    code: 'ERR_DPO_NOT_FOUND',
    message: `expected a model folder, got ${JSON.stringify(missing)} (missing); pass a folder with vocab.json + merges.txt or tokenizer.json, or omit it for GPT-2`,
  });

  const bad = path.join(dir, 'bad');
  fs.mkdirSync(bad);
  fs.writeFileSync(path.join(bad, 'vocab.json'), '{"a": 0, "b": ');
  fs.writeFileSync(path.join(bad, 'merges.txt'), '#version: 0.2\na b\n');
  const vocabFile = path.join(bad, 'vocab.json');
  const err = await loadTokenizer(bad).catch((e) => e);
  t.equal(err.code, 'ERR_DPO_TOKENIZER');
  t.ok(
    err.message.startsWith(`expected ${vocabFile} to be JSON, got a parse error (`),
    err.message,
  );
  t.ok(err.message.endsWith(`); restore the file from the model's original files`), err.message);

  fs.writeFileSync(vocabFile, '{"a": 0, "b": "one"}');
  await t.rejects(loadTokenizer(bad), {
    code: 'ERR_DPO_TOKENIZER',
    message: `expected ${vocabFile}: id of "b" to be an integer >= 0, got "one"; restore the file from the model's original files`,
  });

  fs.rmSync(path.join(bad, 'merges.txt'));
  await t.rejects(loadTokenizer(bad), {
    code: 'ERR_DPO_TOKENIZER',
    message: `expected merges.txt next to vocab.json in ${bad}, got none; copy both files of the tokenizer, or remove both to use GPT-2's default`,
  });
});
