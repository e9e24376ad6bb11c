// The fused log-prob / DPO loss kernel and the chunked LM head against plain libtorch autograd
// (native.kernel.dpoLossReference: log_softmax, gather, the loss formula, backward): values and
// gradients for every loss type, odd shapes, masks and padding, chunking, reduced precision and
// the edge cases of issue 3.
import path from 'path';
import t from 'tap';
import { LOSS_TYPES } from '../src/train/config';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const native = require('node-gyp-build')(path.resolve(__dirname, '..'));
const kernel = native.kernel;

type JsTensor = { shape: number[]; data: Float32Array | Int32Array };
type Result = Record<string, JsTensor | number | undefined> & { loss: number };

// Deterministic pseudo-random numbers (mulberry32) and normals (Box-Muller).
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12),
      v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

interface Case {
  hidden: JsTensor;
  weight: JsTensor;
  logits: JsTensor;
  targets: JsTensor;
  mask: JsTensor;
  refLogps: JsTensor;
}

// B pairs of T tokens: each row has a prompt (masked out), a completion, then right padding.
// The reference log-probs are near the policy's so that the losses sit in their useful range.
function makeCase(B: number, T: number, V: number, C: number, seed: number): Case {
  const rand = rng(seed);
  const R = 2 * B;
  const hidden = randn(R * T * C, rand);
  const weight = randn(V * C, rand, 0.5);
  const targets = new Int32Array(R * T);
  const mask = new Float32Array(R * T);
  for (let r = 0; r < R; r++) {
    const prompt = T > 1 ? Math.floor(rand() * (T / 2)) : 0;
    const pad = T > 2 ? Math.floor(rand() * (T / 4)) : 0;
    for (let i = 0; i < T; i++) {
      targets[r * T + i] = Math.floor(rand() * V);
      mask[r * T + i] = i >= prompt && i < T - pad ? 1 : 0;
    }
    if (!mask.subarray(r * T, r * T + T).some((m) => m)) mask[r * T + T - 1] = 1;
  }
  // logits for the logits form: hidden @ weight^T in JS (small shapes only).
  const logits = new Float32Array(R * T * V);
  if (R * T * V * C <= 5e7) {
    for (let n = 0; n < R * T; n++)
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += hidden[n * C + c] * weight[v * C + c];
        logits[n * V + v] = s;
      }
  }
  const refLogps = new Float32Array(R);
  return {
    hidden: { shape: [R, T, C], data: hidden },
    weight: { shape: [V, C], data: weight },
    logits: { shape: [R, T, V], data: logits },
    targets: { shape: [R, T], data: targets },
    mask: { shape: [R, T], data: mask },
    refLogps: { shape: [R], data: refLogps },
  };
}

// Sets refLogps to the reference's policy sums shifted by a random offset per row.
async function withRef(c: Case, seed: number, spread = 2): Promise<Case> {
  const logps = await kernel.sequenceLogps({
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: c.mask,
    reference: true,
  });
  const rand = rng(seed);
  const ref = new Float32Array(logps.data.length);
  for (let i = 0; i < ref.length; i++) ref[i] = logps.data[i] + spread * (rand() * 2 - 1);
  return { ...c, refLogps: { shape: [ref.length], data: ref } };
}

// max |a - b| / max |b|: the worst error relative to the tensor's scale (0 when both are 0).
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  let diff = 0,
    scale = floor;
  for (let i = 0; i < b.length; i++) {
    if (a[i] === b[i]) continue; // equal infinities included
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  for (let i = 0; i < b.length; i++)
    if (Number.isFinite(b[i])) scale = Math.max(scale, Math.abs(b[i]));
  return diff === 0 ? 0 : diff / Math.max(scale, 1e-30);
}

const VALUE_KEYS = [
  'chosenLogps',
  'rejectedLogps',
  'chosenRewards',
  'rejectedRewards',
  'losses',
  'chosenLogitsSum',
  'rejectedLogitsSum',
  'chosenTokens',
  'rejectedTokens',
];

// Checks every output of `got` against `want`; returns the worst relative error seen.
// Rewards beta * (logps - ref) cancel digits when the policy is near the reference: their error
// is measured against 2 |logps| (2: the largest beta here; fp32 sums carry ~1e-7 |logps|).
function compare(
  tt: typeof t,
  got: Result,
  want: Result,
  grads: string[],
  tol: number,
  gradTol = tol,
): number {
  let worst = 0;
  const logps = [...(want.chosenLogps as JsTensor).data, ...(want.rejectedLogps as JsTensor).data];
  const rewardFloor = 2 * Math.max(0, ...logps.map(Math.abs));
  const check = (key: string, a: ArrayLike<number>, b: ArrayLike<number>, tl: number) => {
    tt.equal(a.length, b.length, `${key} length`);
    const e = relErr(a, b, key.endsWith('Rewards') ? rewardFloor : 0);
    worst = Math.max(worst, e);
    if (!(e <= tl)) tt.fail(`${key}: relative error ${e.toExponential(2)} > ${tl}`);
  };
  check('loss', [got.loss], [want.loss], tol);
  for (const k of VALUE_KEYS) check(k, (got[k] as JsTensor).data, (want[k] as JsTensor).data, tol);
  for (const k of grads) {
    const a = got[k] as JsTensor,
      b = want[k] as JsTensor;
    tt.same(a.shape, b.shape, `${k} shape`);
    check(k, a.data, b.data, gradTol);
  }
  return worst;
}

// The trainer's list of loss types; the test below checks the addon implements exactly these.
const ALL_LOSSES: readonly string[] = LOSS_TYPES;

// Each loss type with the parameters that matter to it; beta large enough that hinge and the
// saturating losses are neither flat nor saturated on these inputs.
const VARIANTS: Array<Record<string, unknown>> = [
  ...ALL_LOSSES.map((lossType) => ({ lossType, beta: 0.5 })),
  { lossType: 'sigmoid', beta: 0.5, labelSmoothing: 0.2 }, // conservative DPO
  { lossType: 'robust', beta: 0.5, labelSmoothing: 0.2 },
  { lossType: 'exo_pair', beta: 0.5, labelSmoothing: 0.1 },
  { lossType: 'sigmoid', beta: 2, referenceFree: true, simpoGamma: 0.5 }, // SimPO
  { lossType: 'sigmoid', beta: 0.5, rpoAlpha: 0.7 }, // RPO
  { lossType: 'bco_pair', beta: 0.5, bcoRunningMean: 0.3, bcoRunningCount: 4 },
  { lossType: 'discopop', beta: 0.5, discopopTau: 0.3 },
];

t.test("the loss type list is TRL's", async (tt) => {
  tt.same(kernel.lossTypes, ALL_LOSSES);
});

t.test('every loss type: values and gradients equal libtorch autograd (fp32, 1e-5)', async (tt) => {
  const base = await withRef(makeCase(3, 7, 123, 16, 1), 2);
  let worst = 0;
  for (const v of VARIANTS) {
    const name = JSON.stringify(v);
    // The chunked head with two pairs per chunk (so, several chunks), against autograd.
    const head = {
      hidden: base.hidden,
      weight: base.weight,
      targets: base.targets,
      mask: base.mask,
      refLogps: base.refLogps,
      ...v,
    };
    const got: Result = await kernel.dpoLoss({
      ...head,
      maxChunkBytes: 2 * 7 * 2 * (123 + 32) * 4,
    });
    const want: Result = await kernel.dpoLossReference(head);
    tt.ok(Number.isFinite(got.loss), `${name}: finite loss`);
    worst = Math.max(worst, compare(tt, got, want, ['dhidden', 'dweight'], 1e-5));
    // The logits form.
    const lg = {
      logits: base.logits,
      targets: base.targets,
      mask: base.mask,
      refLogps: base.refLogps,
      ...v,
    };
    const gotL: Result = await kernel.dpoLoss(lg);
    const wantL: Result = await kernel.dpoLossReference(lg);
    worst = Math.max(worst, compare(tt, gotL, wantL, ['dlogits'], 1e-5));
  }
  tt.comment(`worst relative error over ${VARIANTS.length} variants: ${worst.toExponential(2)}`);
});

t.test('odd shapes: V = 123 and 50257, T = 1, 7, 64, B = 1 and 3', async (tt) => {
  const shapes: Array<[number, number, number, number]> = [
    [1, 1, 123, 8],
    [3, 1, 123, 8],
    [1, 64, 123, 8],
    [3, 64, 123, 5],
    [1, 7, 50257, 8],
    [3, 1, 50257, 8],
    [1, 64, 50257, 4],
  ];
  for (const [B, T, V, C] of shapes) {
    const c = await withRef(makeCase(B, T, V, C, 10 + B * T), 3);
    const opts = {
      hidden: c.hidden,
      weight: c.weight,
      targets: c.targets,
      mask: c.mask,
      refLogps: c.refLogps,
      lossType: 'sigmoid',
      beta: 0.5,
    };
    const got: Result = await kernel.dpoLoss(opts);
    const want: Result = await kernel.dpoLossReference(opts);
    const e = compare(tt, got, want, ['dhidden', 'dweight'], 1e-5);
    tt.comment(`B=${B} T=${T} V=${V} C=${C}: worst relative error ${e.toExponential(2)}`);
  }
});

t.test('the chunked head: dhidden and dweight equal the unchunked ones', async (tt) => {
  const c = await withRef(makeCase(3, 9, 211, 12, 5), 6);
  const perToken = (211 + 2 * 12) * 4;
  for (const lossType of ['sigmoid', 'bco_pair', 'ipo']) {
    const opts = {
      hidden: c.hidden,
      weight: c.weight,
      targets: c.targets,
      mask: c.mask,
      refLogps: c.refLogps,
      lossType,
      beta: 0.5,
    };
    const whole: Result = await kernel.dpoLoss({ ...opts, maxChunkBytes: 1 << 30 });
    // One pair per chunk (one pass; two for bco_pair), and 3 tokens per chunk (pairs split: two passes).
    for (const tokens of [18, 3, 1]) {
      const chunked: Result = await kernel.dpoLoss({ ...opts, maxChunkBytes: tokens * perToken });
      const e = compare(tt, chunked, whole, ['dhidden', 'dweight'], 1e-6);
      tt.ok(e <= 1e-6, `${lossType}, ${tokens} tokens per chunk: ${e.toExponential(2)}`);
    }
  }
});

t.test('reduced precision: bf16 and fp16 logits accumulate in fp32', async (tt) => {
  // Both sides see the same rounded logits; the kernel's sums match fp32 autograd to 1e-5,
  // dlogits are stored in the input dtype (bf16: 8 bits of mantissa, fp16: 11).
  const c = await withRef(makeCase(3, 7, 123, 16, 8), 9);
  for (const [dtype, gradTol] of [
    ['bfloat16', 8e-3],
    ['float16', 1e-3],
  ] as const) {
    const opts = {
      logits: c.logits,
      targets: c.targets,
      mask: c.mask,
      refLogps: c.refLogps,
      lossType: 'sigmoid',
      beta: 0.5,
      dtype,
    };
    const got: Result = await kernel.dpoLoss(opts);
    const want: Result = await kernel.dpoLossReference(opts);
    const e = compare(tt, got, want, ['dlogits'], 1e-5, gradTol);
    tt.comment(
      `${dtype}: worst relative error ${e.toExponential(2)} (dlogits tolerance ${gradTol})`,
    );
  }
});

t.test('step 0: policy == reference gives loss ln 2 and rewards 0 exactly', async (tt) => {
  const c = makeCase(3, 16, 300, 8, 12);
  const ref = await kernel.sequenceLogps({
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: c.mask,
    maxChunkBytes: 4096 * 64,
  });
  const out: Result = await kernel.dpoLoss({
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: c.mask,
    refLogps: ref,
    maxChunkBytes: 4096 * 64,
  });
  tt.equal(out.loss, Math.fround(Math.LN2));
  tt.same(
    Array.from((out.losses as JsTensor).data),
    [1, 2, 3].map(() => Math.fround(Math.LN2)),
  );
  tt.same(Array.from((out.chosenRewards as JsTensor).data), [0, 0, 0]);
  tt.same(Array.from((out.rejectedRewards as JsTensor).data), [0, 0, 0]);
  tt.same(Array.from((out.chosenLogps as JsTensor).data), Array.from(ref.data.subarray(0, 3)));
});

t.test('an all-zero mask row gives zero loss and zero gradient, never NaN', async (tt) => {
  const c = await withRef(makeCase(3, 7, 123, 8, 13), 14);
  const mask = (c.mask.data as Float32Array).slice();
  mask.fill(0, 7 * 4, 7 * 5); // rejected row of pair 1 (rows 3..5 are rejected)
  const opts = {
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: { shape: c.mask.shape, data: mask },
    refLogps: c.refLogps,
  };
  for (const lossType of ALL_LOSSES) {
    const got: Result = await kernel.dpoLoss({ ...opts, lossType, beta: 0.5 });
    const want: Result = await kernel.dpoLossReference({ ...opts, lossType, beta: 0.5 });
    tt.equal((got.losses as JsTensor).data[1], 0, `${lossType}: the pair's loss is 0`);
    const dh = (got.dhidden as JsTensor).data;
    tt.ok(
      dh.subarray(1 * 7 * 8, 2 * 7 * 8).every((x) => x === 0),
      `${lossType}: chosen row 1 has no gradient`,
    );
    tt.ok(dh.every(Number.isFinite) && Number.isFinite(got.loss), `${lossType}: no NaN`);
    compare(tt, got, want, ['dhidden', 'dweight'], 1e-5);
  }
  // Every row empty: loss 0, gradients 0.
  const empty = { ...opts, mask: { shape: c.mask.shape, data: new Float32Array(mask.length) } };
  const got: Result = await kernel.dpoLoss({ ...empty, lossType: 'ipo' });
  tt.equal(got.loss, 0);
  tt.ok((got.dweight as JsTensor).data.every((x) => x === 0));
});

t.test('a pair whose chosen and rejected are identical gives zero gradient', async (tt) => {
  const c = makeCase(1, 11, 123, 8, 15);
  const h = c.hidden.data as Float32Array,
    tg = c.targets.data as Int32Array,
    m = c.mask.data as Float32Array;
  h.copyWithin(11 * 8, 0, 11 * 8);
  tg.copyWithin(11, 0, 11);
  m.copyWithin(11, 0, 11);
  c.refLogps.data.fill(-30);
  for (const lossType of ['sigmoid', 'ipo', 'hinge', 'exo_pair', 'discopop', 'robust']) {
    const out: Result = await kernel.dpoLoss({
      hidden: c.hidden,
      weight: c.weight,
      targets: c.targets,
      mask: c.mask,
      refLogps: c.refLogps,
      lossType,
      beta: 0.5,
    });
    const dh = (out.dhidden as JsTensor).data;
    let sumErr = 0,
      scale = 0;
    for (let i = 0; i < 11 * 8; i++) {
      sumErr = Math.max(sumErr, Math.abs(dh[i] + dh[11 * 8 + i]));
      scale = Math.max(scale, Math.abs(dh[i]));
    }
    tt.equal(sumErr, 0, `${lossType}: dhidden(chosen) = -dhidden(rejected) exactly`);
    const dw = (out.dweight as JsTensor).data;
    const worst = dw.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    tt.ok(
      worst <= 1e-6 * Math.max(scale, 1e-30) * 8,
      `${lossType}: dweight ~ 0 (${worst.toExponential(2)})`,
    );
  }
});

t.test('logits of -inf (masked vocabulary) are handled', async (tt) => {
  const c = await withRef(makeCase(3, 7, 123, 16, 16), 17);
  const z = (c.logits.data as Float32Array).slice();
  const tg = c.targets.data as Int32Array;
  for (let n = 0; n < 6 * 7; n++)
    for (let v = 0; v < 123; v += 3) if (v !== tg[n]) z[n * 123 + v] = -Infinity;
  const opts = {
    logits: { shape: c.logits.shape, data: z },
    targets: c.targets,
    mask: c.mask,
    refLogps: c.refLogps,
    lossType: 'sigmoid',
    beta: 0.5,
  };
  const got: Result = await kernel.dpoLoss(opts);
  const want: Result = await kernel.dpoLossReference(opts);
  compare(tt, got, want, ['dlogits'], 1e-5);
  const dl = (got.dlogits as JsTensor).data;
  tt.ok(dl.every(Number.isFinite), 'dlogits finite');
  tt.equal(dl[3], 0, 'zero gradient at a -inf logit');
});

t.test('errors say what was expected', async (tt) => {
  const c = makeCase(1, 3, 11, 4, 18);
  const opts = {
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: c.mask,
    refLogps: c.refLogps,
  };
  await tt.rejects(kernel.dpoLoss({ ...opts, beta: -1 }), {
    message: 'expected beta > 0, got -1.000000; beta scales the log-ratio, try 0.1',
  });
  tt.throws(() => kernel.dpoLoss({ ...opts, lossType: 'kto' }), {
    message: /^unknown loss type 'kto'; expected one of sigmoid, hinge, ipo, robust, bco_pair,/,
  });
  const bad = (c.targets.data as Int32Array).slice();
  bad.fill(11);
  await tt.rejects(
    kernel.dpoLoss({
      ...opts,
      targets: { shape: c.targets.shape, data: bad },
      mask: { shape: c.mask.shape, data: new Float32Array(6).fill(1) },
    }),
    { message: /a completion target is outside the vocabulary \[0, 11\): found 11/ },
  );
  await tt.rejects(
    kernel.dpoLoss({ ...opts, refLogps: { shape: [3], data: new Float32Array(3) } }),
    { message: /expected ref_logps \[2\]/ },
  );
});

t.test('native.memory counts the CPU allocator', async (tt) => {
  native.memory.resetPeak();
  const before = native.memory.currentBytes();
  const c = makeCase(1, 8, 1000, 8, 19);
  await kernel.dpoLoss({
    hidden: c.hidden,
    weight: c.weight,
    targets: c.targets,
    mask: c.mask,
    refLogps: c.refLogps,
  });
  tt.ok(native.memory.peakBytes() >= before + 8 * 1000 * 4, 'the peak covers a chunk of logits');
  tt.ok(native.memory.currentBytes() >= 0);
});

t.test('an empty vocabulary or channel dimension is an error, not a crash', async (t) => {
  const T = 1;
  const args = {
    hidden: { shape: [2, T, 0], data: new Float32Array(0) },
    weight: { shape: [0, 0], data: new Float32Array(0) },
    targets: { shape: [2, T], data: new Int32Array(2) },
    mask: { shape: [2, T], data: new Float32Array([1, 1]) },
    refLogps: { shape: [2], data: new Float32Array(2) },
  };
  await t.rejects(native.kernel.dpoLoss(args), /expected V >= 1 and C >= 1/);
});
