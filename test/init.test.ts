// `dpo init` writes a loadable Hugging Face folder with the tokenizer beside it, for presets or
// sizes given as flags; `dpo generate` continues a prompt from it.
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';
import { main } from '../src/cli/main';
import { GPT2Model } from '../src/model/gpt2';
import { PRESETS } from '../src/model/config';
import { loadTokenizer } from '../src/tokenizer';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-init-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [],
    err: string[] = [];
  const log = console.log,
    write = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  process.stderr.write = ((s: string) => {
    err.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    const code = await main(['node', 'dpo', ...args]);
    return { code, out: out.join('\n'), err: err.join('') };
  } finally {
    console.log = log;
    process.stderr.write = write;
    process.exitCode = undefined;
  }
}

t.test('dpo init --preset tiny writes model, config and tokenizer', async (t) => {
  const dir = path.join(tmp, 'tiny');
  const r = await run(['init', '--out', dir, '--preset', 'tiny', '--seed', '3']);
  t.equal(r.code, 0, r.err);
  t.match(
    r.out,
    /wrote .*tiny: GPT-2 tiny \(n_layer=2 n_head=2 n_embd=128 n_positions=256\), \d+\.\dM parameters, seed 3/,
  );
  for (const f of [
    'config.json',
    'model.safetensors',
    'vocab.json',
    'merges.txt',
    'tokenizer_config.json',
  ]) {
    t.ok(fs.existsSync(path.join(dir, f)), f);
  }
  const model = await GPT2Model.fromPretrained(dir);
  t.match(model.config, PRESETS.tiny);
  t.same((await loadTokenizer(dir)).encode('Hello world'), [15496, 995]);
  // The same seed gives the same weights; GPT-2's init: N(0, 0.02), residual projections smaller.
  const again = GPT2Model.init('tiny', 3);
  t.same(
    Array.from(again.native.getParameter('h.1.attn.c_attn.weight').data.subarray(0, 64)),
    Array.from(model.native.getParameter('h.1.attn.c_attn.weight').data.subarray(0, 64)),
  );
  const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  t.ok(Math.abs(std(model.native.getParameter('h.0.mlp.c_fc.weight').data) - 0.02) < 0.001);
  t.ok(
    Math.abs(std(model.native.getParameter('h.0.mlp.c_proj.weight').data) - 0.02 / Math.sqrt(4)) <
      0.001,
  );
  t.same(Array.from(new Set(model.native.getParameter('h.0.ln_1.weight').data)), [1]);
});

t.test('dpo init with sizes as flags, and its errors', async (t) => {
  const dir = path.join(tmp, 'custom');
  const r = await run([
    'init',
    '--out',
    dir,
    '--preset',
    'tiny',
    '--n-layer',
    '1',
    '--n-embd',
    '64',
    '--n-positions',
    '64',
  ]);
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), {
    n_layer: 1,
    n_embd: 64,
    n_positions: 64,
  });
  const bad = await run(['init', '--out', path.join(tmp, 'bad'), '--preset', 'gpt5']);
  t.equal(bad.code, 1);
  t.match(
    bad.err,
    /expected preset one of tiny, gpt2, gpt2-medium, gpt2-large, gpt2-xl, got "gpt5"/,
  );
  const odd = await run(['init', '--out', path.join(tmp, 'odd'), '--n-embd', '127']);
  t.match(odd.err, /expected n_embd divisible by n_head=2, got 127/);
});

t.test('dpo generate continues a prompt, greedy and sampled', async (t) => {
  const dir = path.join(tmp, 'tiny');
  const greedy = await run([
    'generate',
    '--model',
    dir,
    '--prompt',
    'Hello',
    '--max-new-tokens',
    '5',
  ]);
  t.equal(greedy.code, 0, greedy.err);
  t.match(greedy.out, /^Hello/);
  const again = await run([
    'generate',
    '--model',
    dir,
    '--prompt',
    'Hello',
    '--max-new-tokens',
    '5',
    '--no-cache',
  ]);
  t.equal(again.out, greedy.out, 'with and without the cache');
  const sampled = await run([
    'generate',
    '--model',
    dir,
    '--prompt',
    'Hello',
    '--max-new-tokens',
    '5',
    '--temperature',
    '1',
    '--top-k',
    '50',
    '--seed',
    '1',
  ]);
  t.equal(sampled.code, 0, sampled.err);
  const missing = await run(['generate', '--model', path.join(tmp, 'none'), '--prompt', 'x']);
  t.match(missing.err, /model folder .*none does not exist/);
});

t.test('dpo init refuses to replace a model unless told to', async (t) => {
  const dir = path.join(tmp, 'tiny');
  const r = await run(['init', '--out', dir]);
  t.equal(r.code, 1);
  t.match(
    r.err,
    /expected --out to name a new folder, got .*tiny holding config\.json and model\.safetensors; choose another folder, or pass --overwrite/,
  );
  const forced = await run(['init', '--out', dir, '--seed', '3', '--overwrite']);
  t.equal(forced.code, 0, forced.err);
  const bad = await run(['init', '--out', path.join(tmp, 'int8'), '--dtype', 'int8']);
  t.match(bad.err, /expected dtype float32, float16 or bfloat16, got "int8"/);
  t.notOk(fs.existsSync(path.join(tmp, 'int8')), 'no folder left behind');
});

t.test('the model API rejects ids that are not token ids', async (t) => {
  const model = await GPT2Model.fromPretrained(path.join(tmp, 'tiny'));
  await t.rejects(model.forward([[1.5]]), {
    code: 'ERR_DPO_CONFIG',
    message: /expected forward: token ids integers in \[0, 50257\), got 1\.5/,
  });
  await t.rejects(model.forward([]), /expected forward ids rows of token ids/);
  await t.rejects(model.forward([[1, 2], [3]]), /expected rows of one length T >= 1/);
  await t.rejects(
    model.generate('x' as unknown as number[]),
    /expected prompt an array of token ids/,
  );
  await t.rejects(model.generate([]), /expected prompt at least one token/);
  await t.rejects(model.generate([50257]), /integers in \[0, 50257\), got 50257/);
});
