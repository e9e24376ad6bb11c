// The trainers and their configs, for `import { DPOTrainer, dpoConfig } from 'node-dpo'`.
export * from './config';
export { DPOTrainer, evaluatePairs, mixWeights, toTokenized } from './dpo-trainer';
export type { DPOTrainerOptions, PreferenceDataset, EvaluateOptions } from './dpo-trainer';
export { SFTTrainer, loadSftExamples } from './sft-trainer';
export type { SFTTrainerOptions } from './sft-trainer';
export { Trainer } from './trainer';
export type { TrainBegin, StepEvent, TrainResult } from './trainer';
export { learningRateAt, warmupStepsOf } from './schedule';
export * from './checkpoint';
export { RunningMeans, MetricsFile, readMetrics, dpoBatchMetrics } from './metrics';
export type { MetricsRecord } from './metrics';
