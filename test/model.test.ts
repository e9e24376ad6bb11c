// The native GPT-2 against invariants and an independent JavaScript forward pass: shapes,
// causality, right padding, checkpoint round trips and layouts, overfitting, generation.
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';
import { GPT2Model } from '../src/model/gpt2';
import { GPT2Config, DEFAULT_CONFIG } from '../src/model/config';
import { native } from '../src/native';
import { referenceLogits, Weights } from './helpers/reference-gpt2';
import {
  f32Bytes,
  fromBF16Bits,
  fromF16Bits,
  readSafetensorsHeader,
  readSafetensorsTensor,
  toBF16Bits,
  toF16Bits,
  u16Bytes,
  writeSafetensors,
} from './helpers/safetensors';

const small: GPT2Config = {
  ...DEFAULT_CONFIG,
  n_layer: 2,
  n_head: 2,
  n_embd: 16,
  n_positions: 32,
  vocab_size: 29,
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-model-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function weightsOf(model: GPT2Model): Weights {
  const w: Weights = {};
  for (const name of model.native.parameterNames()) {
    const p = model.native.getParameter(name);
    w[name] = { shape: p.shape, data: p.data };
  }
  return w;
}

// Deterministic pseudo-random numbers (mulberry32), so the test data never changes.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function rowLogits(model: GPT2Model, ids: number[]): Promise<Float32Array> {
  return (await model.forward([ids])).data;
}

t.test('forward shapes: logits [B, T, V], hidden [B, T, C]', async (t) => {
  const model = GPT2Model.init(small, 1);
  const ids = [
    [1, 2, 3, 4, 5],
    [6, 7, 8, 9, 10],
  ];
  t.same((await model.forward(ids)).shape, [2, 5, 29]);
  t.same((await model.forward(ids, { output: 'hidden' })).shape, [2, 5, 16]);
  t.equal(
    model.numParameters(),
    29 * 16 +
      32 * 16 +
      2 * (4 * 16 + 16 * 48 + 48 + 16 * 16 + 16 + 16 * 64 + 64 + 64 * 16 + 16) +
      2 * 16,
  );
});

t.test('random weights: logits equal an independent JavaScript GPT-2', async (t) => {
  // Every parameter random (biases and layer norms included) so that each one's layout matters.
  const model = GPT2Model.init(small, 0);
  const rand = rng(42);
  const tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
  for (const name of model.native.parameterNames()) {
    const p = model.native.getParameter(name);
    const data = Float32Array.from(p.data, () => (rand() - 0.5) * (name.includes('ln_') ? 1 : 0.6));
    tensors[name] = { dtype: 'F32', shape: [...p.shape], bytes: f32Bytes(data) };
  }
  const file = path.join(tmp, 'random.safetensors');
  writeSafetensors(file, tensors);
  await model.native.loadWeights([file]);
  const ids = [3, 14, 15, 9, 26, 5, 0];
  const got = await rowLogits(model, ids);
  const want = referenceLogits(weightsOf(model), small, ids).flat();
  t.ok(maxAbsDiff(got, want) < 1e-4, `max |native - reference| = ${maxAbsDiff(got, want)}`);
});

t.test('causality: changing a later token leaves earlier logits unchanged', async (t) => {
  const model = GPT2Model.init(small, 2);
  const a = [5, 6, 7, 8, 9, 10],
    b = [5, 6, 7, 20, 9, 10];
  const la = await rowLogits(model, a),
    lb = await rowLogits(model, b);
  const V = small.vocab_size;
  t.equal(maxAbsDiff(la.subarray(0, 3 * V), lb.subarray(0, 3 * V)), 0, 'positions 0..2 identical');
  t.ok(maxAbsDiff(la.subarray(3 * V), lb.subarray(3 * V)) > 1e-3, 'positions 3.. differ');
});

t.test('right padding: real positions equal the sequences run alone', async (t) => {
  const model = GPT2Model.init(small, 3);
  const seqs = [
    [1, 2, 3],
    [4, 5, 6, 7, 8, 9, 10],
    [11, 12, 13, 14, 15],
  ];
  const T = 7,
    V = small.vocab_size;
  const padded = seqs.map((s) => [...s, ...new Array(T - s.length).fill(0)]);
  const batch = (await model.forward(padded)).data;
  for (let b = 0; b < seqs.length; b++) {
    const alone = await rowLogits(model, seqs[b]);
    const inBatch = batch.subarray(b * T * V, (b * T + seqs[b].length) * V);
    t.ok(maxAbsDiff(alone, inBatch) < 1e-5, `row ${b}: ${maxAbsDiff(alone, inBatch)}`);
  }
});

t.test('save/load round trip is bit for bit, in Hugging Face layout', async (t) => {
  const model = GPT2Model.init(small, 4);
  const dir = path.join(tmp, 'roundtrip');
  await model.savePretrained(dir);
  const header = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
  t.same(header.__metadata__, { format: 'pt' });
  t.same(
    header['transformer.h.0.attn.c_attn.weight'].shape,
    [16, 48],
    'Conv1D weights stored [in, out]',
  );
  t.notOk('lm_head.weight' in header, 'tied head not stored');
  t.same(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp')),
    [],
    'no temporary files left',
  );
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  t.match(config, {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_embd: 16,
    activation_function: 'gelu_new',
  });
  const loaded = await GPT2Model.fromPretrained(dir);
  for (const name of model.native.parameterNames()) {
    t.same(
      Buffer.from(loaded.native.getParameter(name).data.buffer),
      Buffer.from(model.native.getParameter(name).data.buffer),
      name,
    );
  }
});

t.test('both key layouts and F32, F16, BF16 weights load to the same numbers', async (t) => {
  const source = GPT2Model.init(small, 5);
  const w = weightsOf(source);
  const encode = (dtype: string, x: Float32Array): Uint8Array =>
    dtype === 'F32'
      ? f32Bytes(x)
      : u16Bytes(Array.from(x, dtype === 'F16' ? toF16Bits : toBF16Bits));
  const decode = (dtype: string, x: Float32Array): Float32Array =>
    dtype === 'F32'
      ? x
      : Float32Array.from(x, (v) =>
          dtype === 'F16' ? fromF16Bits(toF16Bits(v)) : fromBF16Bits(toBF16Bits(v)),
        );
  for (const dtype of ['F32', 'F16', 'BF16']) {
    for (const prefix of ['', 'transformer.']) {
      const tensors: Record<string, any> = {};
      for (const [name, p] of Object.entries(w))
        tensors[prefix + name] = { dtype, shape: [...p.shape], bytes: encode(dtype, p.data) };
      // The attention-mask buffers of older checkpoints are ignored.
      tensors[`${prefix}h.0.attn.bias`] = { dtype: 'U8', shape: [1], bytes: new Uint8Array([1]) };
      tensors[`${prefix}h.1.attn.masked_bias`] = {
        dtype: 'F32',
        shape: [],
        bytes: f32Bytes(new Float32Array([-1e4])),
      };
      const file = path.join(tmp, `layout-${dtype}-${prefix || 'bare'}.safetensors`);
      writeSafetensors(file, tensors);
      const model = GPT2Model.init(small, 99);
      await model.native.loadWeights([file]);
      let worst = 0;
      for (const [name, p] of Object.entries(w))
        worst = Math.max(
          worst,
          maxAbsDiff(model.native.getParameter(name).data, decode(dtype, p.data)),
        );
      t.equal(worst, 0, `${dtype} ${prefix || '(no prefix)'}: every parameter exact`);
    }
  }
});

t.test('saving in float16 and bfloat16 writes those dtypes', async (t) => {
  const model = GPT2Model.init(small, 6);
  for (const [dtype, tag, from] of [
    ['float16', 'F16', fromF16Bits],
    ['bfloat16', 'BF16', fromBF16Bits],
  ] as const) {
    const dir = path.join(tmp, `save-${dtype}`);
    await model.savePretrained(dir, { dtype });
    const file = path.join(dir, 'model.safetensors');
    const raw = readSafetensorsTensor(file, 'transformer.wte.weight');
    t.equal(raw.dtype, tag);
    const bits = new Uint16Array(
      raw.bytes.buffer.slice(raw.bytes.byteOffset, raw.bytes.byteOffset + raw.bytes.length),
    );
    const loaded = await GPT2Model.fromPretrained(dir);
    t.same(
      Array.from(loaded.native.getParameter('wte.weight').data),
      Array.from(bits, from),
      `${dtype} decodes to what was loaded`,
    );
    t.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype, dtype);
  }
});

t.test('an untied LM head is read and written as lm_head.weight', async (t) => {
  const cfg = { ...small, tie_word_embeddings: false };
  const model = GPT2Model.init(cfg, 7);
  const dir = path.join(tmp, 'untied');
  await model.savePretrained(dir);
  t.same(
    readSafetensorsHeader(path.join(dir, 'model.safetensors'))['lm_head.weight'].shape,
    [29, 16],
  );
  const loaded = await GPT2Model.fromPretrained(dir);
  t.same(
    Array.from(loaded.native.getParameter('lm_head.weight').data),
    Array.from(model.native.getParameter('lm_head.weight').data),
  );
});

t.test('malformed safetensors files are rejected with the file and tensor named', async (t) => {
  const model = GPT2Model.init(small, 8);
  const good = { dtype: 'F32', shape: [2, 2], bytes: f32Bytes(new Float32Array(4)) };
  const cases: Array<[string, () => void, RegExp]> = [
    [
      'header-too-long',
      () =>
        writeSafetensors(
          path.join(tmp, 'header-too-long.st'),
          { a: good },
          { headerLength: 1 << 20 },
        ),
      /header-too-long\.st: header length 1048576 runs past the end of the \d+-byte file/,
    ],
    [
      'offset-out-of-range',
      () =>
        writeSafetensors(path.join(tmp, 'offset-out-of-range.st'), {
          'wte.weight': { ...good, offsets: [0, 400] },
        }),
      /offset-out-of-range\.st: tensor wte\.weight: data_offsets end 400 is beyond the data section of 16 bytes/,
    ],
    [
      'overlap',
      () =>
        writeSafetensors(path.join(tmp, 'overlap.st'), {
          a: { ...good, offsets: [0, 16] },
          b: { ...good, offsets: [8, 24] },
          c: { ...good, offsets: [16, 32] },
        }),
      /overlap\.st: tensor b: data_offsets overlap tensor a/,
    ],
    [
      'unknown-dtype',
      () =>
        writeSafetensors(path.join(tmp, 'unknown-dtype.st'), {
          'h.0.ln_1.weight': { ...good, dtype: 'F8_E9' },
        }),
      /unknown-dtype\.st: tensor h\.0\.ln_1\.weight: unknown dtype F8_E9/,
    ],
    [
      'size-mismatch',
      () =>
        writeSafetensors(path.join(tmp, 'size-mismatch.st'), {
          'ln_f.bias': { ...good, shape: [3, 2] },
        }),
      /size-mismatch\.st: tensor ln_f\.bias: shape \[3, 2\] of F32 needs 24 bytes but data_offsets span 16/,
    ],
    [
      'not-json',
      () => {
        const b = Buffer.alloc(12);
        b.writeBigUInt64LE(4n);
        b.write('{{{{', 8);
        fs.writeFileSync(path.join(tmp, 'not-json.st'), b);
      },
      /not-json\.st: header is not valid JSON/,
    ],
    [
      'too-short',
      () => fs.writeFileSync(path.join(tmp, 'too-short.st'), Buffer.alloc(3)),
      /too-short\.st: file of 3 bytes is too short to be safetensors/,
    ],
  ];
  for (const [name, write, message] of cases) {
    write();
    await t.rejects(model.native.loadWeights([path.join(tmp, `${name}.st`)]), message, name);
  }
  // A valid file that does not fit the config names the tensor against config.json.
  const w = weightsOf(model);
  const tensors: Record<string, any> = {};
  for (const [name, p] of Object.entries(w))
    tensors[name] = { dtype: 'F32', shape: [...p.shape], bytes: f32Bytes(p.data) };
  const { ['h.1.mlp.c_fc.weight']: _dropped, ...missing } = tensors;
  writeSafetensors(path.join(tmp, 'missing.st'), missing);
  await t.rejects(
    model.native.loadWeights([path.join(tmp, 'missing.st')]),
    /missing\.st: missing tensor h\.1\.mlp\.c_fc\.weight \(expected shape \[16, 64\] for config\.json n_layer=2 n_embd=16/,
  );
  const transposed = {
    ...tensors,
    'h.0.attn.c_attn.weight': { ...tensors['h.0.attn.c_attn.weight'], shape: [48, 16] },
  };
  writeSafetensors(path.join(tmp, 'misshapen.st'), transposed);
  await t.rejects(
    model.native.loadWeights([path.join(tmp, 'misshapen.st')]),
    /misshapen\.st: tensor h\.0\.attn\.c_attn\.weight has shape \[48, 16\] but config\.json \(n_layer=2 n_embd=16 n_positions=32 vocab_size=29\) expects \[16, 48\]/,
  );
  writeSafetensors(path.join(tmp, 'extra.st'), { ...tensors, 'score.weight': good });
  await t.rejects(
    model.native.loadWeights([path.join(tmp, 'extra.st')]),
    /extra\.st: unexpected tensor score\.weight/,
  );
});

t.test('native errors become JS errors, never an abort', async (t) => {
  const model = GPT2Model.init(small, 9);
  // The addon checks too, for callers that skip GPT2Model's checks.
  await t.rejects(
    model.native.forward(Int32Array.from([1, 2, 29]), [1, 3]),
    /token id 29 is outside the vocabulary \[0, 29\)/,
  );
  await t.rejects(
    model.forward([[1, 2, 29]]),
    /expected forward: token ids integers in \[0, 29\), got 29/,
  );
  await t.rejects(
    model.forward([new Array(33).fill(1)]),
    /sequence of 33 tokens is longer than the model's n_positions=32/,
  );
  await t.rejects(
    model.native.loadWeights([path.join(tmp, 'nope.safetensors')]),
    /nope\.safetensors: cannot open: No such file/,
  );
  t.throws(
    () => new (native().Model)({ ...small, n_embd: 15 }),
    /expected n_embd divisible by n_head/,
  );
  t.throws(() => new (native().Model)({ ...small, n_embd: -5 }), /expected n_embd >= 1, got -5/);
  // Refused before any allocation, instead of the kernel killing the process for memory.
  t.throws(
    () => new (native().Model)({ ...small, n_layer: 1e9, n_embd: 128 }),
    /a GPT-2 of 1\.98e\+14 parameters needs \d+\.\d GB for its fp32 weights alone, more than this machine's/,
  );
});

t.test('a tiny model overfits one small batch', async (t) => {
  const model = GPT2Model.init({ ...small, embd_pdrop: 0, attn_pdrop: 0, resid_pdrop: 0 }, 10);
  const optim = new (native().AdamW)(model.native, { lr: 1e-2 });
  const ids = Int32Array.from([1, 5, 9, 2, 7, 3, 8, 4, 11, 6, 12, 10, 13, 14, 15, 16]);
  const mask = new Uint8Array(16).fill(1);
  let first = 0,
    last = 0;
  for (let step = 0; step < 60; step++) {
    optim.zeroGrad();
    const { loss } = await model.native.sftBackward(ids, [2, 8], mask);
    optim.clipGradNorm(1.0);
    await optim.step(1e-2);
    if (step === 0) first = loss;
    last = loss;
  }
  t.ok(first > 2.5, `starts near ln(29): ${first}`);
  t.ok(last < 0.05, `final loss ${last} < 0.05`);
});

t.test('generation with the KV cache equals generation without it', async (t) => {
  const model = GPT2Model.init(small, 11);
  const prompt = [3, 1, 4, 1, 5];
  for (const opts of [
    { temperature: 0 },
    { temperature: 0.9, topK: 10, seed: 7 },
    { temperature: 1.2, topP: 0.8, seed: 3 },
  ]) {
    const cached = await model.generate(prompt, { ...opts, maxNewTokens: 20, eosTokenId: -1 });
    const uncached = await model.generate(prompt, {
      ...opts,
      maxNewTokens: 20,
      eosTokenId: -1,
      useCache: false,
    });
    t.equal(cached.length, 20);
    t.same(cached, uncached, JSON.stringify(opts));
  }
  // Greedy decoding is the argmax of the full forward pass.
  const [first] = await model.generate(prompt, { maxNewTokens: 1, eosTokenId: -1 });
  const logits = await rowLogits(model, prompt);
  const last = Array.from(logits.subarray(4 * small.vocab_size));
  t.equal(first, last.indexOf(Math.max(...last)));
  // Generation stops at end of text and never runs past n_positions.
  const stopAt = (await model.generate(prompt, { maxNewTokens: 20, eosTokenId: -1 }))[2];
  const stopped = await model.generate(prompt, { maxNewTokens: 20, eosTokenId: stopAt });
  t.equal(stopped[stopped.length - 1], stopAt);
  t.ok(stopped.length <= 3);
  t.equal(
    (await model.generate(prompt, { maxNewTokens: 100, eosTokenId: -1 })).length,
    32 - prompt.length,
  );
});

t.test('threads: every core by default, settable', async (t) => {
  const n = native();
  t.equal(n.getThreads(), os.availableParallelism?.() ?? os.cpus().length);
  n.setThreads(1);
  t.equal(n.getThreads(), 1);
  n.setThreads(os.cpus().length);
  t.equal(n.buildInfo.blasIsReference, false, `fast BLAS in use: ${n.buildInfo.blas}`);
});

t.test('a rejected checkpoint leaves the model as it was', async (t) => {
  const model = GPT2Model.init(small, 12);
  const before = Array.from(model.native.getParameter('wte.weight').data);
  const oneLayer = GPT2Model.init({ ...small, n_layer: 1 }, 13);
  const dir = path.join(tmp, 'one-layer');
  await oneLayer.savePretrained(dir);
  await t.rejects(
    model.native.loadWeights([path.join(dir, 'model.safetensors')]),
    /missing tensor h\.1\.ln_1\.weight/,
  );
  t.same(Array.from(model.native.getParameter('wte.weight').data), before, 'wte.weight unchanged');
});

t.test('synchronous calls on a busy model are errors, not a frozen event loop', async (t) => {
  const model = GPT2Model.init({ ...small, n_positions: 512, n_embd: 64 }, 14);
  const running = model.generate([1, 2, 3], { maxNewTokens: 500, eosTokenId: -1, useCache: false });
  // The work starts on a pool thread shortly after the call; poll until it holds the model.
  let error: Error | undefined;
  for (let i = 0; i < 200 && !error; i++) {
    await new Promise((r) => setTimeout(r, 2));
    try {
      model.native.getParameter('wte.weight');
    } catch (e) {
      error = e as Error;
    }
  }
  t.match(
    error?.message,
    /getParameter: the model is busy with a running forward, step, load or save; await it first/,
  );
  await running;
  t.equal(model.native.getParameter('wte.weight').shape[0], 29, 'free again once it settles');
});

t.test('mixWeightsFrom blends parameters; evaluation loss builds no gradient', async (t) => {
  const a = GPT2Model.init(small, 15),
    b = GPT2Model.init(small, 16);
  const wa = a.native.getParameter('h.0.mlp.c_fc.weight').data,
    wb = b.native.getParameter('h.0.mlp.c_fc.weight').data;
  await a.native.mixWeightsFrom(b.native, 0.25);
  const mixed = a.native.getParameter('h.0.mlp.c_fc.weight').data;
  t.ok(
    maxAbsDiff(
      mixed,
      Array.from(wa, (x, i) => 0.75 * x + 0.25 * wb[i]),
    ) < 1e-6,
  );
  await t.rejects(async () => a.native.mixWeightsFrom(b.native, 1.5), /expected alpha in \[0, 1\]/);
  const ids = Int32Array.from([1, 2, 3, 4]),
    mask = new Uint8Array([1, 1, 1, 0]);
  const out = await b.native.sftBackward(ids, [1, 4], mask, { computeGrad: false });
  t.ok(out.loss > 0 && out.tokens === 3);
  t.equal(b.native.getGradient('wte.weight'), null, 'no gradient was made');
});
