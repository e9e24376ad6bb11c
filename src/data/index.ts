// The preference-data pipeline: read pairs, tokenize them with an exact boundary, batch them.
export * from './types';
export { loadPreferencePairs, forEachPreferencePair, degeneracy, BUILTIN_SOURCE } from './load';
export type { LoadOptions, Degeneracy } from './load';
export { resolveSource, readRows } from './read';
export type { RawRow, SourceOptions } from './read';
export {
  ASSISTANT_TAG,
  DEFAULT_CHAT_TEMPLATE,
  detectFormat,
  rowToPair,
  splitTranscripts,
} from './formats';
export type { FieldKeys } from './formats';
export {
  tokenizePairs,
  encodePairs,
  truncatePairs,
  encodePromptCompletion,
  splitTrailingSpace,
  checkTokenizeOptions,
} from './tokenize';
export {
  makeBatches,
  makeSftBatches,
  batchOrder,
  collatePreference,
  collateSft,
  splitEval,
  shuffled,
  seededRandom,
} from './batch';
export type { PreferenceBatch, SftBatch, BatchOptions } from './batch';
export {
  builtinPreferenceDataset,
  builtinPrompt,
  builtinAnswer,
  scoreBuiltinCompletion,
} from './builtin';
export { inspectData, formatInspectReport, lengthStats, BOUNDARY_MARK } from './inspect';
export type { InspectOptions, InspectReport, InspectExample, LengthStats } from './inspect';
