// DPOTrainer and SFTTrainer on a tiny model: the golden run (ln 2 first, recorded losses, every
// parameter moves), resume equality, stop(), a planted NaN, metrics keys, TR-DPO and the
// reference log-prob cache.
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';
import { DEFAULT_CONFIG, GPT2Config } from '../src/model/config';
import { GPT2Model } from '../src/model/gpt2';
import type { TokenizedPair } from '../src/data';
import { DPOTrainer, DPOConfig, SFTTrainer, readMetrics, MetricsRecord } from '../src/train';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-train-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

// No dropout, so the fused kernel and the TypeScript path see the same network.
const small: GPT2Config = {
  ...DEFAULT_CONFIG,
  n_layer: 2,
  n_head: 2,
  n_embd: 32,
  n_positions: 32,
  vocab_size: 64,
  embd_pdrop: 0,
  attn_pdrop: 0,
  resid_pdrop: 0,
};

// Four fixed pairs of ids below 64; completions end with 63 as end-of-text.
const pairs: TokenizedPair[] = [
  { promptIds: [1, 2, 3], chosenIds: [10, 11, 63], rejectedIds: [20, 63] },
  { promptIds: [4, 5], chosenIds: [12, 63], rejectedIds: [21, 22, 23, 63] },
  { promptIds: [6, 7, 8, 9], chosenIds: [13, 14, 63], rejectedIds: [24, 25, 63] },
  { promptIds: [30], chosenIds: [15, 63], rejectedIds: [26, 63] },
];

const base = (dir: string): Partial<DPOConfig> => ({
  outputDir: path.join(tmp, dir),
  learningRate: 1e-2,
  perDeviceTrainBatchSize: 4,
  maxSteps: 6,
  loggingSteps: 1,
  saveSteps: 3,
  seed: 7,
  plot: false,
});

function snapshot(model: GPT2Model): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const name of model.native.parameterNames())
    m.set(name, model.native.getParameter(name).data.slice());
  return m;
}

const losses = (history: MetricsRecord[]) =>
  history.filter((r) => r.loss !== undefined).map((r) => r.loss);

// Recorded with the fused kernel, libtorch 1.13 CPU (DPO_PRINT_GOLDEN=1 prints a run's losses).
const GOLDEN = [
  0.6931471824645996, 0.6325268745422363, 0.5962591767311096, 0.5363364815711975,
  0.49175551533699036, 0.45532089471817017,
];

t.test('golden: ln 2 first, recorded losses, every parameter moves, resume repeats', async (t) => {
  const model = GPT2Model.init(small, 3);
  const before = snapshot(model);
  const trainer = new DPOTrainer({ model, trainDataset: pairs, args: base('golden') });
  const run = await trainer.train();
  const seen = losses(run.logHistory);
  if (process.env.DPO_PRINT_GOLDEN) console.error(JSON.stringify(seen));
  t.equal(seen.length, 6);
  t.ok(Math.abs(seen[0] - Math.log(2)) < 1e-6, `first loss ${seen[0]} is ln 2`);
  for (let i = 0; i < GOLDEN.length; i++)
    t.ok(Math.abs(seen[i] - GOLDEN[i]) < 1e-4, `loss ${i + 1}: ${seen[i]} vs ${GOLDEN[i]}`);
  t.ok(seen[5] < seen[0], `losses fall: ${seen.map((x) => x.toFixed(5)).join(' ')}`);
  const after = snapshot(model);
  for (const [name, w] of before) {
    const v = after.get(name)!;
    let moved = false;
    for (let i = 0; i < w.length && !moved; i++) moved = w[i] !== v[i];
    t.ok(moved, `${name} moved`);
  }

  // Resume from checkpoint-3 in a copy of the output folder: steps 4..6 repeat exactly.
  const copy = path.join(tmp, 'golden-resume');
  fs.cpSync(path.join(tmp, 'golden'), copy, { recursive: true });
  for (const c of ['checkpoint-6']) fs.rmSync(path.join(copy, c), { recursive: true });
  const again = new DPOTrainer({
    model: GPT2Model.init(small, 3),
    trainDataset: pairs,
    args: { ...base('golden-resume'), resumeFromCheckpoint: path.join(copy, 'checkpoint-3') },
  });
  const resumed = await again.train();
  t.same(losses(resumed.logHistory), seen, 'resumed losses equal the uninterrupted run');
  t.same(
    losses(readMetrics(path.join(copy, 'metrics.jsonl'))),
    seen,
    'metrics.jsonl holds each step once',
  );
});

t.test('metrics: TRL keys in metrics.jsonl, eval_ keys, a checkpoint folder', async (t) => {
  const model = GPT2Model.init(small, 1);
  const trainer = new DPOTrainer({
    model,
    trainDataset: pairs.slice(0, 3),
    evalDataset: pairs.slice(3),
    args: { ...base('keys'), maxSteps: 2, perDeviceTrainBatchSize: 2, evalSteps: 1, plot: true },
  });
  const events: string[] = [];
  for (const e of ['begin', 'step', 'log', 'eval', 'save', 'end'])
    trainer.on(e, () => events.push(e));
  await trainer.train();
  const records = readMetrics(path.join(tmp, 'keys', 'metrics.jsonl'));
  const train = records.find((r) => r.loss !== undefined)!;
  for (const k of [
    'loss',
    'rewards/chosen',
    'rewards/rejected',
    'rewards/accuracies',
    'rewards/margins',
    'logps/chosen',
    'logps/rejected',
    'logits/chosen',
    'logits/rejected',
    'grad_norm',
    'learning_rate',
    'epoch',
    'tokens_per_second',
    'step',
  ])
    t.ok(k in train, k);
  const ev = records.find((r) => r.eval_loss !== undefined)!;
  for (const k of [
    'eval_loss',
    'eval_rewards/accuracies',
    'eval_rewards/margins',
    'eval_rewards/chosen',
  ])
    t.ok(k in ev, k);
  t.same([...new Set(events)].sort(), ['begin', 'end', 'eval', 'log', 'save', 'step']);
  const ckpt = path.join(tmp, 'keys', 'checkpoint-2');
  for (const f of [
    'config.json',
    'model.safetensors',
    'trainer_state.json',
    'optimizer.pt',
    'rng.bin',
  ]) {
    t.ok(fs.existsSync(path.join(ckpt, f)), f);
  }
  const state = JSON.parse(fs.readFileSync(path.join(ckpt, 'trainer_state.json'), 'utf8'));
  t.equal(state.global_step, 2);
  t.same(state.data_position, { epoch: 1, batch: 0 });
  t.ok(fs.existsSync(path.join(tmp, 'keys', 'training_curves.svg')));
});

t.test('stop(): finishes the step, saves a loadable checkpoint', async (t) => {
  const model = GPT2Model.init(small, 2);
  const trainer = new DPOTrainer({
    model,
    trainDataset: pairs,
    args: { ...base('stop'), maxSteps: 50, saveSteps: 0 },
  });
  trainer.on('step', (s: { step: number }) => {
    if (s.step === 2) trainer.stop();
  });
  const r = await trainer.train();
  t.equal(r.interrupted, true);
  t.equal(r.globalStep, 2);
  t.equal(r.checkpoint, path.join(tmp, 'stop', 'checkpoint-2'));
  const loaded = await GPT2Model.fromPretrained(r.checkpoint!);
  t.same(
    loaded.native.getParameter('h.0.attn.c_attn.weight').data,
    model.native.getParameter('h.0.attn.c_attn.weight').data,
  );
  t.notOk(
    fs.existsSync(path.join(tmp, 'stop', 'model.safetensors')),
    'no final model for an interrupted run',
  );
});

t.test('a planted NaN (a learning rate of 1e30) stops the run with the message', async (t) => {
  const model = GPT2Model.init(small, 2);
  const trainer = new DPOTrainer({
    model,
    trainDataset: pairs,
    args: { ...base('nan'), learningRate: 1e30, maxGradNorm: 0, saveSteps: 1, maxSteps: 10 },
  });
  const err = await trainer.train().then(
    () => undefined,
    (e) => e,
  );
  t.equal(err?.code, 'ERR_DPO_NUMERIC');
  t.match(
    err?.message,
    /^expected a finite (loss|grad_norm) at step 2, got (NaN|-?Infinity); the run stopped and the last good checkpoint, .*checkpoint-1, is kept\. Lower the learning rate/,
  );
  t.ok(fs.existsSync(path.join(tmp, 'nan', 'checkpoint-1', 'model.safetensors')));
  t.notOk(fs.existsSync(path.join(tmp, 'nan', 'checkpoint-2')));
});

t.test('TR-DPO: the reference moves toward the policy and is checkpointed', async (t) => {
  const model = GPT2Model.init(small, 4);
  const trainer = new DPOTrainer({
    model,
    trainDataset: pairs,
    args: {
      ...base('trdpo'),
      maxSteps: 2,
      saveSteps: 0,
      syncRefModel: true,
      refModelSyncSteps: 2,
      refModelMixupAlpha: 0.5,
    },
  });
  const ref0 = snapshot(trainer.refModel!);
  await trainer.train();
  const name = 'h.1.mlp.c_fc.weight';
  const p = model.native.getParameter(name).data;
  const r = trainer.refModel!.native.getParameter(name).data;
  const r0 = ref0.get(name)!;
  let worst = 0;
  for (let i = 0; i < p.length; i++)
    worst = Math.max(worst, Math.abs(r[i] - (0.5 * p[i] + 0.5 * r0[i])));
  t.ok(worst < 1e-6, `ref = 0.5 policy + 0.5 ref0 (worst ${worst})`);
  t.ok(fs.existsSync(path.join(tmp, 'trdpo', 'checkpoint-2', 'ref_model.safetensors')));
});

t.test('precomputeRefLogps: same losses, and a second run reads the cache', async (t) => {
  const cacheDir = path.join(tmp, 'ref-cache');
  const runs: { losses: number[]; cached: boolean[] }[] = [];
  for (const precompute of [false, true, true]) {
    const trainer = new DPOTrainer({
      model: GPT2Model.init(small, 5),
      trainDataset: pairs,
      args: {
        ...base(`pre-${runs.length}`),
        maxSteps: 3,
        saveSteps: 0,
        precomputeRefLogps: precompute,
        refLogpsCacheDir: cacheDir,
      },
    });
    const cached: boolean[] = [];
    trainer.on('refLogps', (e: { cached: boolean }) => cached.push(e.cached));
    runs.push({ losses: losses((await trainer.train()).logHistory), cached });
  }
  for (let i = 0; i < 3; i++)
    t.ok(Math.abs(runs[1].losses[i] - runs[0].losses[i]) < 1e-5, `step ${i + 1}`);
  t.same(runs[1].cached, [false]);
  t.same(runs[2].cached, [true]);
  t.same(runs[2].losses, runs[1].losses);
});

t.test('SFT: completion-only loss falls, eval_loss logged, resume works', async (t) => {
  const model = GPT2Model.init(small, 6);
  const trainer = new SFTTrainer({
    model,
    trainDataset: pairs,
    evalDataset: pairs.slice(0, 2),
    args: {
      outputDir: path.join(tmp, 'sft'),
      learningRate: 1e-2,
      perDeviceTrainBatchSize: 4,
      maxSteps: 8,
      loggingSteps: 1,
      saveSteps: 4,
      evalSteps: 4,
      plot: false,
    },
  });
  const r = await trainer.train();
  const l = losses(r.logHistory);
  t.equal(l.length, 8);
  t.ok(l[7] < l[0] * 0.8, `SFT loss falls: ${l[0].toFixed(3)} -> ${l[7].toFixed(3)}`);
  t.ok(r.logHistory.some((m) => m.eval_loss !== undefined));
  const again = new SFTTrainer({
    model: GPT2Model.init(small, 6),
    trainDataset: pairs,
    evalDataset: pairs.slice(0, 2),
    args: {
      ...trainer.args,
      outputDir: path.join(tmp, 'sft-2'),
      resumeFromCheckpoint: path.join(tmp, 'sft', 'checkpoint-4'),
    },
  });
  const r2 = await again.train();
  t.same(losses(r2.logHistory), l);
});

t.test('resume with dropout and shuffled multi-batch epochs repeats the run exactly', async (t) => {
  // Dropout on, 2 pairs a batch so each epoch reshuffles 2 batches, and the checkpoint at step 3
  // falls inside the second epoch: the dropout generator, the epoch's order and the position in
  // it must all come back.
  const noisy: GPT2Config = { ...small, embd_pdrop: 0.1, attn_pdrop: 0.1, resid_pdrop: 0.1 };
  const args = (dir: string): Partial<DPOConfig> => ({
    ...base(dir),
    perDeviceTrainBatchSize: 2,
    maxSteps: 7,
    saveSteps: 3,
    disableDropout: false,
  });
  const first = await new DPOTrainer({
    model: GPT2Model.init(noisy, 4),
    trainDataset: pairs,
    args: args('noisy'),
  }).train();
  const seen = losses(first.logHistory);
  t.equal(seen.length, 7);
  // Dropout is on: the same batch twice gives two losses, so the equality below is not trivial.
  const twice = await new DPOTrainer({
    model: GPT2Model.init(noisy, 4),
    trainDataset: pairs,
    args: { ...args('noisy-seed'), seed: 8 },
  }).train();
  t.not(losses(twice.logHistory)[1], seen[1], 'another seed gives other losses');
  const resumed = await new DPOTrainer({
    model: GPT2Model.init(noisy, 4),
    trainDataset: pairs,
    args: {
      ...args('noisy-resume'),
      resumeFromCheckpoint: path.join(tmp, 'noisy', 'checkpoint-3'),
    },
  }).train();
  t.same(
    losses(resumed.logHistory).slice(3),
    seen.slice(3),
    'steps 4..7 equal the uninterrupted run',
  );
});

t.test(
  'one train() at a time; a folder holding a run is resumed or overwritten, never mixed',
  async (t) => {
    const args = { ...base('guard'), maxSteps: 2, saveSteps: 1 };
    const trainer = new DPOTrainer({ model: GPT2Model.init(small, 9), trainDataset: pairs, args });
    const first = trainer.train();
    await t.rejects(trainer.train(), {
      code: 'ERR_DPO_CONFIG',
      message: /expected one train\(\) at a time/,
    });
    await first;
    const again = new DPOTrainer({ model: GPT2Model.init(small, 9), trainDataset: pairs, args });
    await t.rejects(again.train(), {
      code: 'ERR_DPO_CONFIG',
      message:
        /expected an outputDir without a previous run, got .*guard holding checkpoint-1, checkpoint-2, metrics\.jsonl; resume it/,
    });
    // A checkpoint folder cut short by a crash is cleared when the next run starts.
    fs.mkdirSync(path.join(args.outputDir!, '.checkpoint-3.tmp-99999'));
    const over = new DPOTrainer({
      model: GPT2Model.init(small, 9),
      trainDataset: pairs,
      args: { ...args, maxSteps: 1, overwriteOutputDir: true },
    });
    await over.train();
    t.notOk(
      fs.existsSync(path.join(args.outputDir!, '.checkpoint-3.tmp-99999')),
      'unfinished write cleared',
    );
    t.same(
      fs.readdirSync(args.outputDir!).filter((f) => f.startsWith('checkpoint-')),
      ['checkpoint-1'],
      'the old run is gone',
    );
  },
);
