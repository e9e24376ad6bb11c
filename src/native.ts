// Loads the compiled addon with node-gyp-build and explains, with the commands that fix it, why
// it did not load (not built, libtorch missing, C++ ABI or CUDA mismatch).
import path from 'path';
import { DpoError } from './errors';
import type { Tensor } from './tensor';

/** GPT-2 hyperparameters as in Hugging Face's config.json (snake_case, as on disk). */
export interface NativeGPT2Config {
  n_layer: number;
  n_head: number;
  n_embd: number;
  n_positions: number;
  vocab_size: number;
  layer_norm_epsilon: number;
  embd_pdrop: number;
  attn_pdrop: number;
  resid_pdrop: number;
  initializer_range: number;
  tie_word_embeddings: boolean;
}

export interface NativeGenerateOptions {
  /** Tokens to add at most (default 64). */
  maxNewTokens?: number;
  /** 0 for greedy decoding (the default in GPT2Model.generate); above 0 samples. */
  temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the most likely tokens whose probability reaches p (1: all). */
  topP?: number;
  /** Stop after this token (default 50256, end of text); -1 never stops early. */
  eosTokenId?: number;
  seed?: number;
  /** Reuse keys and values of earlier positions (default true). */
  useCache?: boolean;
}

export interface NativeModel {
  config(): NativeGPT2Config;
  numParameters(): number;
  parameterNames(): string[];
  getParameter(name: string): Tensor<'float32'>;
  getGradient(name: string): Tensor<'float32'> | null;
  loadWeights(files: string[]): Promise<void>;
  saveWeights(file: string, dtype?: 'float32' | 'float16' | 'bfloat16'): Promise<void>;
  copyWeightsFrom(other: NativeModel): void;
  /** this = alpha * other + (1 - alpha) * this, parameter by parameter. */
  mixWeightsFrom(other: NativeModel, alpha: number): Promise<void>;
  setRequiresGrad(on: boolean): void;
  forward(
    ids: Int32Array,
    shape: [number, number],
    options?: { output?: 'logits' | 'hidden' },
  ): Promise<Tensor<'float32'>>;
  sftBackward(
    ids: Int32Array,
    shape: [number, number],
    mask: Uint8Array,
    options?: { train?: boolean; scale?: number; computeGrad?: boolean },
  ): Promise<{ loss: number; tokens: number }>;
  generate(prompt: Int32Array, options?: NativeGenerateOptions): Promise<Int32Array>;
  /** The dropout generator's state, to save with a checkpoint. */
  getRngState(): Uint8Array;
  setRngState(state: Uint8Array): void;
}

/** A makeBatches() batch fits: 2B rows, chosen rows first, right-padded to T. */
export interface NativeBatch {
  inputIds: Int32Array; // [rows*T]
  rows: number;
  T: number;
  completionMask: Uint8Array; // [rows*T]; mask[r][t] = 1 iff target t (token t+1) is scored
}

/** The DPO loss options; names as in TRL's DPOConfig, camelCase. */
export interface NativeDpoConfig {
  lossType: string;
  beta: number;
  labelSmoothing: number;
  referenceFree: boolean;
  simpoGamma: number;
  rpoAlpha: number;
  discopopTau?: number;
  /** bco_pair's running mean of the rewards and its count, carried from step to step. */
  bcoRunningMean?: number;
  bcoRunningCount?: number;
}

export interface NativeDpoOutput {
  loss: number;
  losses: Float32Array; // [B]
  chosenLogps: Float32Array; // [B]
  rejectedLogps: Float32Array; // [B]
  chosenRewards: Float32Array; // [B]
  rejectedRewards: Float32Array; // [B]
  chosenLogitsMean: number;
  rejectedLogitsMean: number;
  /** bco_pair's running mean after this batch, for the next step's config. */
  bcoRunningMean: number;
  bcoRunningCount: number;
}

export interface NativeAdamW {
  step(lr: number): Promise<void>;
  zeroGrad(): void;
  clipGradNorm(maxNorm: number): number;
  /** Moments and step counts (libtorch's serialisation), written atomically. */
  saveState(file: string): Promise<void>;
  loadState(file: string): Promise<void>;
}

export interface NativeAddon {
  Model: new (config: Partial<NativeGPT2Config>, seed?: number) => NativeModel;
  AdamW: new (
    model: NativeModel,
    options?: {
      lr?: number;
      beta1?: number;
      beta2?: number;
      eps?: number;
      weightDecay?: number;
    },
  ) => NativeAdamW;
  setThreads(n: number): void;
  getThreads(): number;
  /** Forward (+ backward into .grad, times `scale`, when computeGrad) through the fused kernel. */
  dpoBackward(
    policy: NativeModel,
    batch: NativeBatch,
    refLogps: Float32Array | null,
    cfg: NativeDpoConfig,
    options: {
      train: boolean;
      scale: number;
      computeGrad: boolean;
      head?: 'fused' | 'reference';
    },
  ): Promise<NativeDpoOutput>;
  /** [rows] summed completion log-probs, eval mode, no gradient. */
  sequenceLogps(model: NativeModel, batch: NativeBatch): Promise<Float32Array>;
  buildInfo: {
    torchVersion: string;
    cuda: boolean;
    cxx11Abi: boolean;
    blas: string;
    blasIsReference: boolean;
  };
  /** The fused kernel's functions for tests and benchmarks (native/bindings/kernel_binding.cc). */
  kernel?: Record<string, (...args: any[]) => any>;
}

const packageRoot = path.resolve(__dirname, '..');

/** Turns a load failure into a message that says why and lists the fix. */
export function explainLoadError(err: Error): string {
  const msg = err.message;
  const rebuild = '  npm rebuild node-dpo   (or, in a checkout: npm run build:addon)';
  if (/No native build was found/.test(msg)) {
    return (
      'the node-dpo addon is not built. Build it with:\n' +
      rebuild +
      '\n  (it needs libtorch: sudo apt-get install -y libtorch-dev libopenblas0-pthread nlohmann-json3-dev)'
    );
  }
  if (/(cuda|cudart|cublas|nvrtc)[\w.]*\.so/i.test(msg)) {
    return (
      'the addon was built against a CUDA libtorch but the CUDA runtime is missing here ' +
      '(driver or toolkit mismatch). Either install the CUDA runtime that libtorch expects, or rebuild ' +
      'for CPU:\n  DPO_CUDA=OFF LIBTORCH= npm rebuild node-dpo'
    );
  }
  if (/lib(torch|c10)[\w.]*\.so[\w.]*: cannot open shared object file/.test(msg)) {
    return (
      'libtorch, which the addon was built against, is missing at run time. Reinstall it with:\n' +
      '  sudo apt-get install -y libtorch-dev libopenblas0-pthread\n' +
      '  or, if you built against a LIBTORCH folder or Python torch, add its lib/ to LD_LIBRARY_PATH'
    );
  }
  if (/undefined symbol/.test(msg)) {
    const abi = /cxx11|St7__cxx11/.test(msg)
      ? ' (a C++ ABI mismatch: _GLIBCXX_USE_CXX11_ABI differs)'
      : '';
    return (
      `the addon does not match the libtorch it loads${abi}. Rebuild it against the libtorch ` +
      'you have:\n' +
      rebuild
    );
  }
  return `the node-dpo addon failed to load. Rebuild it with:\n${rebuild}`;
}

let cached: NativeAddon | undefined;

/** The addon, loaded once. */
export function native(): NativeAddon {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    cached = require('node-gyp-build')(packageRoot) as NativeAddon;
  } catch (err) {
    const e = err as Error;
    throw new DpoError('ERR_DPO_NATIVE', `${explainLoadError(e)}\n(native error: ${e.message})`, {
      cause: e,
    });
  }
  return cached;
}

/** Sets the threads used by ATen and the BLAS (default: every core). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new DpoError('ERR_DPO_CONFIG', `expected threads a positive integer, got ${n}`);
  }
  native().setThreads(n);
}
