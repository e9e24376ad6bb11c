// Trainer configs: the fields of TRL's TrainingArguments, SFTConfig and DPOConfig in camelCase,
// their defaults, and one validation pass that reports every bad field with the same template.
import { expectedError } from '../errors';
import type { TruncationMode } from '../data';

export type LrSchedulerType = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';

/** The DPO losses, by TRL's names; the kernel implements each (see native/kernel). */
export const LOSS_TYPES = [
  'sigmoid',
  'hinge',
  'ipo',
  'robust',
  'bco_pair',
  'sppo_hard',
  'nca_pair',
  'apo_zero',
  'apo_down',
  'sigmoid_norm',
  'exo_pair',
  'discopop',
] as const;
export type LossType = (typeof LOSS_TYPES)[number];

/** Fields shared by SFT and DPO, as in transformers' TrainingArguments. */
export interface TrainingConfig {
  outputDir: string;
  learningRate: number;
  perDeviceTrainBatchSize: number; // pairs (DPO) or rows (SFT) per micro-batch
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  maxSteps: number; // > 0 overrides numTrainEpochs
  warmupRatio: number;
  warmupSteps: number; // > 0 overrides warmupRatio
  lrSchedulerType: LrSchedulerType;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  maxGradNorm: number; // 0 turns clipping off (the norm is still logged)
  loggingSteps: number;
  evalSteps: number; // 0: evaluate only at the end (when there is an eval set)
  saveSteps: number; // 0: save only at the end
  saveTotalLimit: number; // 0: keep every checkpoint
  seed: number;
  maxLength: number; // prompt + completion tokens
  maxPromptLength: number;
  truncationMode: TruncationMode;
  groupByLength: boolean;
  /** A checkpoint folder, or true for the newest checkpoint-<step> in outputDir. */
  resumeFromCheckpoint: string | boolean;
  /** Write metrics.jsonl, checkpoints and the plot (false: keep everything in memory). */
  saveToDisk: boolean;
  /** Start over in an outputDir that already holds a run (default: refuse, as HF's Trainer). */
  overwriteOutputDir: boolean;
  plot: boolean;
}

export interface SFTConfig extends TrainingConfig {
  completionOnlyLoss: boolean; // score only completion tokens (prompt masked)
}

export interface DPOConfig extends TrainingConfig {
  beta: number;
  lossType: LossType;
  labelSmoothing: number;
  referenceFree: boolean;
  simpoGamma: number; // SimPO's target margin, with referenceFree only; 0 is plain DPO
  rpoAlpha: number; // 0: off; else adds rpoAlpha * NLL of the chosen completions
  discopopTau: number; // the discopop loss's temperature
  precomputeRefLogps: boolean;
  disableDropout: boolean; // as TRL: the policy runs without dropout, so step 1's loss is ln 2
  /** Folder for cached reference log-probs; default ~/.cache/node-dpo/ref-logps. */
  refLogpsCacheDir: string;
  syncRefModel: boolean; // TR-DPO (Gorbatovski et al. 2024)
  refModelMixupAlpha: number;
  refModelSyncSteps: number;
}

const TRAINING_DEFAULTS: TrainingConfig = {
  outputDir: 'dpo-output',
  learningRate: 5e-5,
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  gradientAccumulationSteps: 1,
  numTrainEpochs: 3,
  maxSteps: -1,
  warmupRatio: 0,
  warmupSteps: 0,
  lrSchedulerType: 'linear',
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  loggingSteps: 10,
  evalSteps: 0,
  saveSteps: 500,
  saveTotalLimit: 0,
  seed: 42,
  maxLength: 1024,
  maxPromptLength: 512,
  truncationMode: 'keep_end',
  groupByLength: false,
  resumeFromCheckpoint: false,
  saveToDisk: true,
  overwriteOutputDir: false,
  plot: true,
};

export const SFT_DEFAULTS: SFTConfig = {
  ...TRAINING_DEFAULTS,
  learningRate: 2e-5,
  completionOnlyLoss: true,
};

export const DPO_DEFAULTS: DPOConfig = {
  ...TRAINING_DEFAULTS,
  learningRate: 1e-6,
  beta: 0.1,
  lossType: 'sigmoid',
  labelSmoothing: 0,
  referenceFree: false,
  simpoGamma: 0,
  rpoAlpha: 0,
  discopopTau: 0.05,
  precomputeRefLogps: false,
  disableDropout: true,
  refLogpsCacheDir: '',
  syncRefModel: false,
  refModelMixupAlpha: 0.6,
  refModelSyncSteps: 512,
};

type Check = [field: string, ok: (v: any) => boolean, expected: string, fix: string];

const isInt = (min: number) => (v: unknown) => Number.isInteger(v) && (v as number) >= min;
const isNum = (ok: (v: number) => boolean) => (v: unknown) =>
  typeof v === 'number' && Number.isFinite(v) && ok(v);
const isBool = (v: unknown) => typeof v === 'boolean';

const TRAINING_CHECKS: Check[] = [
  [
    'outputDir',
    (v) => typeof v === 'string' && v !== '',
    'a folder name',
    'checkpoints and metrics go there',
  ],
  ['learningRate', isNum((v) => v > 0), '> 0', 'e.g. 5e-7 for DPO on GPT-2, 2e-5 for SFT'],
  ['perDeviceTrainBatchSize', isInt(1), 'an integer >= 1', 'pairs per micro-batch, e.g. 8'],
  ['perDeviceEvalBatchSize', isInt(1), 'an integer >= 1', 'pairs per eval batch, e.g. 8'],
  ['gradientAccumulationSteps', isInt(1), 'an integer >= 1', 'micro-batches per optimizer step'],
  ['numTrainEpochs', isNum((v) => v > 0), '> 0', 'passes over the data; or set maxSteps'],
  [
    'maxSteps',
    (v) => Number.isInteger(v) && (v === -1 || v >= 1),
    '-1 or an integer >= 1',
    '-1 runs numTrainEpochs',
  ],
  [
    'warmupRatio',
    isNum((v) => v >= 0 && v < 1),
    'in [0, 1)',
    'the fraction of steps spent warming up',
  ],
  ['warmupSteps', isInt(0), 'an integer >= 0', '0 uses warmupRatio'],
  [
    'lrSchedulerType',
    (v) => ['linear', 'cosine', 'constant', 'constant_with_warmup'].includes(v),
    'one of linear, cosine, constant, constant_with_warmup',
    'linear decays to 0 after warmup',
  ],
  ['weightDecay', isNum((v) => v >= 0), '>= 0', 'e.g. 0 or 0.01'],
  ['adamBeta1', isNum((v) => v >= 0 && v < 1), 'in [0, 1)', 'AdamW uses 0.9'],
  ['adamBeta2', isNum((v) => v >= 0 && v < 1), 'in [0, 1)', 'AdamW uses 0.999'],
  ['adamEpsilon', isNum((v) => v > 0), '> 0', 'AdamW uses 1e-8'],
  ['maxGradNorm', isNum((v) => v >= 0), '>= 0', '0 turns clipping off, 1 is usual'],
  ['loggingSteps', isInt(1), 'an integer >= 1', 'optimizer steps between metric lines'],
  ['evalSteps', isInt(0), 'an integer >= 0', '0 evaluates at the end only'],
  ['saveSteps', isInt(0), 'an integer >= 0', '0 saves at the end only'],
  ['saveTotalLimit', isInt(0), 'an integer >= 0', '0 keeps every checkpoint'],
  ['seed', isInt(0), 'a non-negative integer', 'the same seed repeats a run exactly'],
  ['maxLength', isInt(2), 'an integer >= 2', 'prompt + completion tokens, e.g. 512'],
  ['maxPromptLength', isInt(1), 'an integer >= 1', 'prompt tokens, e.g. 256'],
  [
    'truncationMode',
    (v) => v === 'keep_start' || v === 'keep_end',
    '"keep_start" or "keep_end"',
    'keep_end keeps the prompt tokens next to the completion',
  ],
  ['groupByLength', isBool, 'a boolean', 'true batches pairs of similar length'],
  [
    'resumeFromCheckpoint',
    (v) => typeof v === 'boolean' || (typeof v === 'string' && v !== ''),
    'a checkpoint folder or a boolean',
    'true resumes from the newest checkpoint in outputDir',
  ],
  ['saveToDisk', isBool, 'a boolean', 'false keeps metrics in memory only'],
  ['overwriteOutputDir', isBool, 'a boolean', 'true starts over in an outputDir that holds a run'],
  ['plot', isBool, 'a boolean', 'false skips the training-curve plot'],
];

const DPO_CHECKS: Check[] = [
  ['beta', isNum((v) => v > 0), '> 0', 'beta scales the log-ratio, try 0.1'],
  [
    'lossType',
    (v) => (LOSS_TYPES as readonly string[]).includes(v),
    `one of ${LOSS_TYPES.join(', ')}`,
    'sigmoid is the loss of the DPO paper',
  ],
  [
    'labelSmoothing',
    isNum((v) => v >= 0 && v < 0.5),
    'in [0, 0.5)',
    'the assumed rate of flipped labels (cDPO, robust)',
  ],
  ['referenceFree', isBool, 'a boolean', 'true compares against a uniform reference'],
  ['simpoGamma', isNum(() => true), 'a number', "SimPO's target reward margin; 0 for DPO"],
  [
    'rpoAlpha',
    isNum((v) => v >= 0),
    '>= 0',
    "0 turns the NLL term of RPO off, 1 is the paper's value",
  ],
  [
    'discopopTau',
    isNum((v) => v > 0),
    '> 0',
    'the temperature of the discopop loss, TRL uses 0.05',
  ],
  ['precomputeRefLogps', isBool, 'a boolean', 'true scores the data with the reference once'],
  ['disableDropout', isBool, 'a boolean', 'true trains the policy without dropout, as TRL does'],
  [
    'refLogpsCacheDir',
    (v) => typeof v === 'string',
    'a folder name (or "" for the default)',
    'e.g. .cache/ref-logps',
  ],
  ['syncRefModel', isBool, 'a boolean', 'true enables TR-DPO'],
  [
    'refModelMixupAlpha',
    isNum((v) => v >= 0 && v <= 1),
    'in [0, 1]',
    'TR-DPO mixes ref = alpha * policy + (1 - alpha) * ref',
  ],
  ['refModelSyncSteps', isInt(1), 'an integer >= 1', 'steps between TR-DPO reference updates'],
];

const SFT_CHECKS: Check[] = [
  ['completionOnlyLoss', isBool, 'a boolean', 'true masks the prompt out of the loss'],
];

function resolve<T extends object>(
  defaults: T,
  checks: Check[],
  given: Partial<T>,
  what: string,
): T {
  const known = new Set(Object.keys(defaults));
  for (const key of Object.keys(given)) {
    if (!known.has(key)) {
      throw expectedError(
        `a ${what} field`,
        `(one of ${[...known].join(', ')})`,
        key,
        'check the spelling (camelCase)',
      );
    }
  }
  const cfg = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(given)) if (v !== undefined) cfg[k] = v;
  for (const [field, ok, expected, fix] of checks) {
    if (!ok(cfg[field])) throw expectedError(field, expected, cfg[field], fix);
  }
  if ((cfg.maxPromptLength as number) >= (cfg.maxLength as number)) {
    throw expectedError(
      'maxPromptLength',
      `< maxLength (${cfg.maxLength})`,
      cfg.maxPromptLength,
      'leave room for the completion',
    );
  }
  return cfg as T;
}

/** A complete, checked SFT config: defaults filled in, each bad field an ERR_DPO_CONFIG error. */
export function sftConfig(given: Partial<SFTConfig> = {}): SFTConfig {
  return resolve(SFT_DEFAULTS, [...TRAINING_CHECKS, ...SFT_CHECKS], given, 'SFTConfig');
}

/** A complete, checked DPO config. */
export function dpoConfig(given: Partial<DPOConfig> = {}): DPOConfig {
  const cfg = resolve(DPO_DEFAULTS, [...TRAINING_CHECKS, ...DPO_CHECKS], given, 'DPOConfig');
  if (cfg.referenceFree && cfg.syncRefModel) {
    throw expectedError(
      'syncRefModel',
      'false with referenceFree',
      true,
      'a reference-free loss has no reference to sync',
    );
  }
  if (cfg.referenceFree && cfg.precomputeRefLogps) {
    throw expectedError(
      'precomputeRefLogps',
      'false with referenceFree',
      true,
      'there is no reference to score',
    );
  }
  if (cfg.simpoGamma !== 0 && !cfg.referenceFree) {
    throw expectedError(
      'simpoGamma',
      '0 with a reference model',
      cfg.simpoGamma,
      "SimPO's margin belongs to the reference-free loss: set referenceFree too",
    );
  }
  if (cfg.syncRefModel && cfg.precomputeRefLogps) {
    throw expectedError(
      'precomputeRefLogps',
      'false with syncRefModel',
      true,
      'TR-DPO changes the reference, so its log-probs cannot be computed once',
    );
  }
  return cfg;
}
