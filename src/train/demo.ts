// The demo: a tiny GPT-2 from scratch, SFT then DPO on the built-in arithmetic pairs, and the
// held-out preference accuracy and ground-truth score before and after DPO.
import { EventEmitter } from 'events';
import path from 'path';
import {
  builtinAnswer,
  builtinPreferenceDataset,
  scoreBuiltinCompletion,
  splitEval,
  TextPair,
  tokenizePairs,
  TokenizedPair,
} from '../data';
import { presetConfig } from '../model/config';
import { GPT2Model } from '../model/gpt2';
import { loadTokenizer, Tokenizer } from '../tokenizer';
import { DPOTrainer, evaluatePairs } from './dpo-trainer';
import { SFTTrainer } from './sft-trainer';
import type { DPOConfig, SFTConfig } from './config';

export interface DemoOptions {
  outputDir: string;
  seed: number;
  pairs: number; // built-in pairs, before the held-out split
  evalFraction: number;
  sftSteps: number;
  dpoSteps: number;
  sft: Partial<SFTConfig>;
  dpo: Partial<DPOConfig>;
  samples: number; // generations shown side by side
  sftOnBoth: boolean; // SFT on both responses of each pair: the format and the candidates, not the preference
}

export const DEMO_DEFAULTS: DemoOptions = {
  outputDir: 'dpo-demo',
  seed: 0,
  pairs: 2000,
  evalFraction: 0.1,
  sftSteps: 300,
  dpoSteps: 300,
  sft: {
    learningRate: 1e-3,
    perDeviceTrainBatchSize: 32,
    warmupRatio: 0.05,
    lrSchedulerType: 'cosine',
  },
  // RPO's NLL term on the chosen answer (Pang et al. 2024): without it, DPO on pairs this alike
  // (" 7" against " 8") lowers the likelihood of both answers and greedy accuracy falls while the
  // reward margin grows (likelihood displacement, Razin et al. 2024).
  dpo: {
    learningRate: 3e-4,
    perDeviceTrainBatchSize: 16,
    beta: 0.1,
    rpoAlpha: 1,
    warmupRatio: 0.05,
    lrSchedulerType: 'cosine',
  },
  samples: 6,
  sftOnBoth: true,
};

/** What the model does on the held-out pairs at one moment. */
export interface DemoSnapshot {
  preferenceAccuracy: number; // pairs where logp(chosen) > logp(rejected) under the policy alone
  groundTruthScore: number; // mean score of greedy answers to the held-out prompts
  exactAnswers: number; // fraction answered exactly right
  rewardAccuracy?: number; // rewards/accuracies against the SFT reference (after DPO)
  rewardMargin?: number;
  loss?: number;
}

export interface DemoResult {
  trainPairs: number;
  evalPairs: number;
  evalPrompts: number;
  afterSft: DemoSnapshot;
  afterDpo: DemoSnapshot;
  samples: { prompt: string; answer: number; sft: string; dpo: string }[];
  sftSeconds: number;
  dpoSeconds: number;
  outputDir: string;
}

async function answers(
  model: GPT2Model,
  tokenizer: Tokenizer,
  prompts: string[],
): Promise<string[]> {
  const out: string[] = [];
  for (const p of prompts) {
    const ids = await model.generate(tokenizer.encode(p), {
      maxNewTokens: 4,
      eosTokenId: tokenizer.eosTokenId,
    });
    out.push(tokenizer.decode(ids.filter((id) => id !== tokenizer.eosTokenId)));
  }
  return out;
}

async function snapshot(
  model: GPT2Model,
  ref: GPT2Model | null,
  tokenizer: Tokenizer,
  evalPairs: TokenizedPair[],
  prompts: string[],
  beta: number,
): Promise<{ snap: DemoSnapshot; texts: string[] }> {
  const m = await evaluatePairs(model, ref, evalPairs, {
    lossType: 'sigmoid',
    beta,
    labelSmoothing: 0,
    referenceFree: ref === null,
    simpoGamma: 0,
    rpoAlpha: 0,
    batchSize: 32,
  });
  const texts = await answers(model, tokenizer, prompts);
  const scores = prompts.map((p, i) => scoreBuiltinCompletion(p, texts[i]));
  const snap: DemoSnapshot = {
    preferenceAccuracy: m['logps/accuracies'],
    groundTruthScore: scores.reduce((a, b) => a + b, 0) / scores.length,
    exactAnswers: scores.filter((s) => s === 1).length / scores.length,
  };
  if (ref) {
    snap.rewardAccuracy = m['rewards/accuracies'];
    snap.rewardMargin = m['rewards/margins'];
    snap.loss = m.loss;
  }
  return { snap, texts };
}

/** Runs the demo; the SFT and DPO trainers are emitted as 'trainer' events for a reporter. */
export async function runDemo(
  given: Partial<DemoOptions> = {},
  events = new EventEmitter(),
): Promise<DemoResult> {
  const o = {
    ...DEMO_DEFAULTS,
    ...given,
    sft: { ...DEMO_DEFAULTS.sft, ...given.sft },
    dpo: { ...DEMO_DEFAULTS.dpo, ...given.dpo },
  };
  const tokenizer = await loadTokenizer();

  // data: built-in pairs, a held-out split, the distinct held-out prompts
  const all = builtinPreferenceDataset({ n: o.pairs, seed: o.seed });
  const split = splitEval(all, { fraction: o.evalFraction, seed: o.seed });
  const trainPairs = tokenizePairs(split.train, tokenizer).pairs;
  const evalPairs = tokenizePairs(split.eval, tokenizer).pairs;
  const prompts = [...new Set(split.eval.map((p: TextPair) => p.prompt))].sort();

  // SFT: a fresh tiny GPT-2 learns the format (and some answers) from the chosen completions
  // No dropout: 2 layers and a few hundred steps leave nothing to regularise.
  const model = GPT2Model.init(
    presetConfig('tiny', { embd_pdrop: 0, attn_pdrop: 0, resid_pdrop: 0 }),
    o.seed,
  );
  const sftPairs = o.sftOnBoth
    ? [...trainPairs, ...trainPairs.map((p) => ({ ...p, chosenIds: p.rejectedIds }))]
    : trainPairs;
  const sft = new SFTTrainer({
    model,
    tokenizer,
    trainDataset: sftPairs,
    args: {
      ...o.sft,
      outputDir: path.join(o.outputDir, 'sft'),
      maxSteps: o.sftSteps,
      seed: o.seed,
      saveSteps: 0,
      loggingSteps: 10,
      overwriteOutputDir: true, // the demo's own folder: a second demo starts over
    },
  });
  events.emit('trainer', sft, 'sft');
  let t0 = performance.now();
  await sft.train();
  const sftSeconds = (performance.now() - t0) / 1000;
  const before = await snapshot(model, null, tokenizer, evalPairs, prompts, o.dpo.beta ?? 0.1);
  events.emit('snapshot', 'sft', before.snap);

  // DPO: the SFT model is the frozen reference and the starting policy
  const ref = model.clone();
  const dpo = new DPOTrainer({
    model,
    refModel: ref,
    tokenizer,
    trainDataset: trainPairs,
    evalDataset: evalPairs,
    args: {
      ...o.dpo,
      outputDir: path.join(o.outputDir, 'dpo'),
      maxSteps: o.dpoSteps,
      seed: o.seed,
      saveSteps: 0,
      overwriteOutputDir: true,
      loggingSteps: 10,
      evalSteps: Math.max(1, Math.round(o.dpoSteps / 4)),
    },
  });
  events.emit('trainer', dpo, 'dpo');
  t0 = performance.now();
  await dpo.train();
  const dpoSeconds = (performance.now() - t0) / 1000;
  const after = await snapshot(model, ref, tokenizer, evalPairs, prompts, o.dpo.beta ?? 0.1);

  // Show prompts whose answers changed first, then unchanged ones, in prompt order.
  const order = prompts.map((_, i) => i);
  const changed = order.filter((i) => before.texts[i] !== after.texts[i]);
  const shown = [...changed, ...order.filter((i) => before.texts[i] === after.texts[i])].slice(
    0,
    o.samples,
  );
  return {
    trainPairs: trainPairs.length,
    evalPairs: evalPairs.length,
    evalPrompts: prompts.length,
    afterSft: before.snap,
    afterDpo: after.snap,
    samples: shown.map((i) => ({
      prompt: prompts[i],
      answer: builtinAnswer(prompts[i]),
      sft: before.texts[i],
      dpo: after.texts[i],
    })),
    sftSeconds,
    dpoSeconds,
    outputDir: o.outputDir,
  };
}
