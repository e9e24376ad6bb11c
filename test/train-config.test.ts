// The trainer's pure pieces: config validation messages, schedules, loss math against finite
// differences, running means, checkpoint rotation and the SVG plot.
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';
import { DpoError } from '../src/errors';
import { plotMetrics } from '../src/plot/svg';
import {
  dpoConfig,
  learningRateAt,
  listCheckpoints,
  rotateCheckpoints,
  RunningMeans,
  sftConfig,
  warmupStepsOf,
  resolveResume,
} from '../src/train';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-train-config-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('config: defaults mirror TRL', async (t) => {
  const c = dpoConfig();
  t.equal(c.beta, 0.1);
  t.equal(c.lossType, 'sigmoid');
  t.equal(c.learningRate, 1e-6);
  t.equal(c.maxLength, 1024);
  t.equal(c.refModelMixupAlpha, 0.6);
  t.equal(c.refModelSyncSteps, 512);
  t.equal(sftConfig().learningRate, 2e-5);
});

t.test('config: one message template, exact text, stable code', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ beta: -1 }, 'expected beta > 0, got -1; beta scales the log-ratio, try 0.1'],
    [
      { lossType: 'dpo' },
      'expected lossType one of sigmoid, hinge, ipo, robust, bco_pair, sppo_hard, nca_pair, apo_zero, apo_down, sigmoid_norm, exo_pair, discopop, got "dpo"; sigmoid is the loss of the DPO paper',
    ],
    [
      { learningRate: 0 },
      'expected learningRate > 0, got 0; e.g. 5e-7 for DPO on GPT-2, 2e-5 for SFT',
    ],
    [
      { perDeviceTrainBatchSize: 2.5 },
      'expected perDeviceTrainBatchSize an integer >= 1, got 2.5; pairs per micro-batch, e.g. 8',
    ],
    [{ maxSteps: 0 }, 'expected maxSteps -1 or an integer >= 1, got 0; -1 runs numTrainEpochs'],
    [
      { warmupRatio: 1 },
      'expected warmupRatio in [0, 1), got 1; the fraction of steps spent warming up',
    ],
    [
      { lrSchedulerType: 'step' },
      'expected lrSchedulerType one of linear, cosine, constant, constant_with_warmup, got "step"; linear decays to 0 after warmup',
    ],
    [
      { labelSmoothing: 0.5 },
      'expected labelSmoothing in [0, 0.5), got 0.5; the assumed rate of flipped labels (cDPO, robust)',
    ],
    [
      { maxLength: 64, maxPromptLength: 64 },
      'expected maxPromptLength < maxLength (64), got 64; leave room for the completion',
    ],
    [
      { truncationMode: 'middle' },
      'expected truncationMode "keep_start" or "keep_end", got "middle"; keep_end keeps the prompt tokens next to the completion',
    ],
    [{ beta: 'abc' }, 'expected beta > 0, got "abc"; beta scales the log-ratio, try 0.1'],
    [
      { syncRefModel: true, precomputeRefLogps: true },
      'expected precomputeRefLogps false with syncRefModel, got true; TR-DPO changes the reference, so its log-probs cannot be computed once',
    ],
  ];
  for (const [given, message] of cases) {
    t.throws(
      () => dpoConfig(given as any),
      { code: 'ERR_DPO_CONFIG', message },
      JSON.stringify(given),
    );
  }
  t.throws(() => dpoConfig({ betta: 1 } as any), {
    code: 'ERR_DPO_CONFIG',
    message:
      /^expected a DPOConfig field \(one of outputDir, .*\), got "betta"; check the spelling \(camelCase\)$/,
  });
  t.ok(new DpoError('ERR_DPO_CONFIG', 'x') instanceof Error);
  t.throws(() => sftConfig({ completionOnlyLoss: 1 as any }), {
    message: 'expected completionOnlyLoss a boolean, got 1; true masks the prompt out of the loss',
  });
});

t.test('schedule: warmup then linear, cosine, constant', async (t) => {
  t.equal(warmupStepsOf(100, 0, 0.1), 10);
  t.equal(warmupStepsOf(100, 5, 0.1), 5);
  t.equal(learningRateAt(0, 100, 1, 'linear', 10), 0);
  t.equal(learningRateAt(5, 100, 1, 'linear', 10), 0.5);
  t.equal(learningRateAt(10, 100, 1, 'linear', 10), 1);
  t.equal(learningRateAt(55, 100, 1, 'linear', 10), 0.5);
  t.equal(learningRateAt(55, 100, 1, 'cosine', 10), 0.5 * (1 + Math.cos(Math.PI * 0.5)));
  t.equal(learningRateAt(10, 100, 1, 'cosine', 10), 1);
  t.equal(learningRateAt(99, 100, 1, 'constant_with_warmup', 10), 1);
  t.equal(learningRateAt(0, 100, 1, 'constant', 10), 1);
});

t.test('running means average between logging steps, weighted', async (t) => {
  const m = new RunningMeans();
  m.add({ loss: 1, grad_norm: 2 });
  m.add({ loss: 3 });
  m.add({ loss: 5 }, 2);
  t.same(m.take(), { loss: 3.5, grad_norm: 2 });
  t.same(m.take(), {});
});

t.test('checkpoints: listed by step, rotated to the newest N, resume target', async (t) => {
  const out = path.join(tmp, 'rot');
  for (const step of [5, 10, 15, 20]) {
    fs.mkdirSync(path.join(out, `checkpoint-${step}`), { recursive: true });
    fs.writeFileSync(path.join(out, `checkpoint-${step}`, 'trainer_state.json'), '{}');
  }
  fs.mkdirSync(path.join(out, '.checkpoint-25.tmp-1')); // a half-written one is never listed
  t.same(
    listCheckpoints(out).map((c) => c.step),
    [5, 10, 15, 20],
  );
  t.equal(resolveResume(out, true), path.join(out, 'checkpoint-20'));
  await rotateCheckpoints(out, 2);
  t.same(
    listCheckpoints(out).map((c) => c.step),
    [15, 20],
  );
  t.throws(() => resolveResume(path.join(tmp, 'none'), true), { code: 'ERR_DPO_NOT_FOUND' });
  t.throws(() => resolveResume(path.join(out, 'checkpoint-5'), 'x'), { code: 'ERR_DPO_NOT_FOUND' });
});

t.test('plot: an SVG with a panel per metric group, eval dashed', async (t) => {
  const svg = plotMetrics(
    [
      { step: 1, loss: 0.69, 'rewards/accuracies': 0.5 },
      { step: 2, loss: 0.6, 'rewards/accuracies': 0.7 },
      { step: 2, eval_loss: 0.65 },
    ],
    'run <1>',
  );
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /run &lt;1&gt;/);
  t.match(svg, />loss</);
  t.match(svg, />rewards\/accuracies</);
  t.match(svg, /stroke-dasharray/);
  t.notMatch(svg, />grad_norm</);
});
