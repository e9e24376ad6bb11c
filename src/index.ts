// node-dpo's public API: models, tokenizer, preference data, errors and tensor typings.
export { version } from './version';
export { DpoError, expectedError } from './errors';
export type { ErrorCode } from './errors';
export type { Tensor, DType, TypedArrayOf } from './tensor';
export { native, setThreads } from './native';
export { GPT2Model, resolveModelDir, weightFiles } from './model/gpt2';
export type { GenerateOptions } from './model/gpt2';
export { PRESETS, DEFAULT_CONFIG, presetConfig, readConfig, writeConfig } from './model/config';
export type { GPT2Config, PresetName } from './model/config';
export { hubCacheDir, resolveHubSnapshot } from './hub';
export { loadTokenizer, defaultTokenizer } from './tokenizer';
export type { Tokenizer } from './tokenizer';
export * from './data';
export * from './train';
