// The DPO training step through the whole model: the fused head against the unfused one (full
// logits, log_softmax, gather, autograd) on every parameter's gradient, the step-0 identities,
// and the reference log-probs against log-softmax sums computed here from the logits.
import t from 'tap';
import { DEFAULT_CONFIG, GPT2Config } from '../src/model/config';
import { GPT2Model } from '../src/model/gpt2';
import { native } from '../src/native';

const cfg: GPT2Config = {
  ...DEFAULT_CONFIG,
  n_layer: 2,
  n_head: 2,
  n_embd: 24,
  n_positions: 32,
  vocab_size: 61,
  embd_pdrop: 0,
  attn_pdrop: 0,
  resid_pdrop: 0,
};
const addon = native() as any;

// Two pairs, T = 7: prompts of 2 and 3 tokens, completions of different lengths, right padding.
// Row r's mask[t] = 1 when token t + 1 belongs to the completion.
const T = 7;
const rows = [
  { ids: [5, 9, 13, 17, 21, 50, 0], prompt: 2, len: 6 }, // chosen 0
  { ids: [6, 10, 14, 3, 0, 0, 0], prompt: 3, len: 4 }, // chosen 1
  { ids: [5, 9, 40, 41, 0, 0, 0], prompt: 2, len: 4 }, // rejected 0
  { ids: [6, 10, 14, 33, 34, 35, 36], prompt: 3, len: 7 }, // rejected 1
];
const batch = {
  rows: 4,
  T,
  inputIds: Int32Array.from(rows.flatMap((r) => r.ids)),
  completionMask: Uint8Array.from(
    rows.flatMap((r) =>
      Array.from({ length: T }, (_, t) => (t + 1 >= r.prompt && t + 1 < r.len ? 1 : 0)),
    ),
  ),
};

function logSoftmaxAt(logits: Float32Array, offset: number, V: number, y: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, logits[offset + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[offset + v] - m);
  return logits[offset + y] - m - Math.log(s);
}

t.test('reference log-probs equal log-softmax sums of the forward logits', async (t) => {
  const model = GPT2Model.init(cfg, 1);
  const logps: Float32Array = await addon.sequenceLogps(model.native, batch);
  const logits = (await model.forward(batch.inputIds, { shape: [4, T] })).data;
  const V = cfg.vocab_size;
  rows.forEach((r, i) => {
    let want = 0;
    for (let t = 0; t + 1 < T; t++)
      if (batch.completionMask[i * T + t])
        want += logSoftmaxAt(logits, (i * T + t) * V, V, r.ids[t + 1]);
    t.ok(Math.abs(logps[i] - want) < 1e-4 * Math.abs(want), `row ${i}: ${logps[i]} vs ${want}`);
  });
});

t.test('step 0, policy = reference: loss is ln 2 and rewards are 0', async (t) => {
  const policy = GPT2Model.init(cfg, 2);
  const ref = policy.clone();
  const refLogps = await addon.sequenceLogps(ref.native, batch);
  const out = await addon.dpoBackward(
    policy.native,
    batch,
    refLogps,
    { lossType: 'sigmoid', beta: 0.1 },
    { train: true, scale: 1, computeGrad: true },
  );
  t.equal(out.loss, Math.fround(Math.LN2));
  t.same(Array.from(out.chosenRewards), [0, 0]);
  t.same(Array.from(out.rejectedRewards), [0, 0]);
});

for (const lossType of ['sigmoid', 'ipo', 'hinge']) {
  t.test(
    `${lossType}: the fused step's gradients equal the unfused step's on every parameter`,
    async (t) => {
      const ref = GPT2Model.init(cfg, 3);
      const refLogps = await addon.sequenceLogps(ref.native, batch);
      const grads: Record<string, Record<string, Float32Array>> = {};
      const losses: Record<string, number> = {};
      for (const head of ['fused', 'reference']) {
        const policy = GPT2Model.init(cfg, 4); // differs from the reference: the loss is not ln 2
        const out = await addon.dpoBackward(
          policy.native,
          batch,
          refLogps,
          { lossType, beta: 0.5 },
          { train: true, scale: 0.5, computeGrad: true, head },
        );
        losses[head] = out.loss;
        grads[head] = {};
        for (const name of policy.native.parameterNames())
          grads[head][name] = policy.native.getGradient(name)!.data;
      }
      t.ok(
        Math.abs(losses.fused - losses.reference) < 1e-5 * Math.abs(losses.reference),
        `loss ${losses.fused} vs ${losses.reference}`,
      );
      let worst = 0,
        worstName = '';
      for (const name of Object.keys(grads.fused)) {
        const a = grads.fused[name],
          b = grads.reference[name];
        const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
        for (let i = 0; i < a.length; i++) {
          const rel = Math.abs(a[i] - b[i]) / scale;
          if (rel > worst) {
            worst = rel;
            worstName = name;
          }
        }
      }
      t.ok(
        worst < 1e-4,
        `worst gradient difference ${worst} (relative to the tensor's largest) in ${worstName}`,
      );
      t.ok(
        Array.from(grads.fused['wte.weight']).some((g) => g !== 0),
        'the tied head/embedding gets a gradient',
      );
    },
  );
}

t.test('a few DPO steps on one batch raise the margin', async (t) => {
  const policy = GPT2Model.init(cfg, 5);
  const refLogps = await addon.sequenceLogps(policy.native, batch);
  const optim = new (native().AdamW)(policy.native, { lr: 5e-3 });
  const margins: number[] = [];
  for (let step = 0; step < 8; step++) {
    optim.zeroGrad();
    const out = await addon.dpoBackward(
      policy.native,
      batch,
      refLogps,
      { lossType: 'sigmoid', beta: 0.1 },
      { train: true, scale: 1, computeGrad: true },
    );
    margins.push(
      out.chosenRewards[0] + out.chosenRewards[1] - out.rejectedRewards[0] - out.rejectedRewards[1],
    );
    await optim.step(5e-3);
  }
  t.equal(margins[0], 0);
  t.ok(margins[7] > 0.05, `margin after 7 steps: ${margins[7]}`);
});

t.test('bad inputs to the step are JS errors', async (t) => {
  const policy = GPT2Model.init(cfg, 6);
  await t.rejects(
    async () =>
      addon.dpoBackward(policy.native, batch, new Float32Array(4), { lossType: 'dpo-ish' }, {}),
    /dpo-ish/,
  );
  t.throws(
    () => addon.dpoBackward(policy.native, batch, null, { lossType: 'sigmoid' }, {}),
    /refLogps \[2B\] are required unless referenceFree/,
  );
  t.throws(
    () => addon.dpoBackward(policy.native, batch, new Float32Array(3), { lossType: 'sigmoid' }, {}),
    /refLogps: shape \[4\] needs 4 elements, the array has 3/,
  );
});
