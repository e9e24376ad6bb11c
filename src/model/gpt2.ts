// GPT2Model: a GPT-2 held by the addon, created fresh or loaded from a Hugging Face folder (or
// a hub name in the local cache), run forward, sampled from, and saved for transformers.
import fs from 'fs';
import path from 'path';
import { DpoError, expectedError } from '../errors';
import { native, NativeGenerateOptions, NativeModel } from '../native';
import type { Tensor } from '../tensor';
import type { Tokenizer } from '../tokenizer';
import { GPT2Config, presetConfig, readConfig, validateConfig, writeConfig } from './config';
import { looksLikeHubId, resolveHubSnapshot } from '../hub';

/** Sampling options of generate(); see NativeGenerateOptions. */
export type GenerateOptions = NativeGenerateOptions;

/** Finds a model folder: a local path, or a hub name in the local Hugging Face cache. */
export function resolveModelDir(nameOrDir: string, revision = 'main'): string {
  if (fs.existsSync(nameOrDir)) {
    if (!fs.statSync(nameOrDir).isDirectory()) {
      throw new DpoError(
        'ERR_DPO_NOT_FOUND',
        `${nameOrDir} is a file; pass the model folder that holds config.json`,
      );
    }
    return nameOrDir;
  }
  if (!looksLikeHubId(nameOrDir)) {
    throw new DpoError('ERR_DPO_NOT_FOUND', `model folder ${nameOrDir} does not exist`);
  }
  return resolveHubSnapshot(nameOrDir, 'models', revision);
}

/** The safetensors files of a model folder (one file, or the shards of an index). */
export function weightFiles(dir: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [single];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    } catch (err) {
      throw new DpoError(
        'ERR_DPO_CHECKPOINT',
        `${index}: not valid JSON (${(err as Error).message})`,
      );
    }
    if (!map || typeof map !== 'object') {
      throw new DpoError('ERR_DPO_CHECKPOINT', `${index}: no weight_map object`);
    }
    return [...new Set(Object.values(map))].map((f) => path.join(dir, f));
  }
  if (fs.existsSync(path.join(dir, 'pytorch_model.bin'))) {
    throw new DpoError(
      'ERR_DPO_UNSUPPORTED',
      `${dir} holds only pytorch_model.bin (a pickle), which node-dpo does not read. Convert it once ` +
        'with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)',
    );
  }
  throw new DpoError(
    'ERR_DPO_NOT_FOUND',
    `${dir} has no model.safetensors (nor model.safetensors.index.json)`,
  );
}

// Token ids are integers in [0, V); anything else is an error before it reaches the addon.
function checkIds(ids: ArrayLike<number>, V: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw expectedError(
        `${what}: token ids`,
        `integers in [0, ${V})`,
        id,
        `id ${i} is out of place; encode text with the model's tokenizer`,
      );
    }
  }
}

export class GPT2Model {
  readonly config: GPT2Config;
  /** The addon's model; the trainer drives it directly. */
  readonly native: NativeModel;

  private constructor(config: GPT2Config, model: NativeModel) {
    this.config = config;
    this.native = model;
  }

  /** A freshly initialised GPT-2 (GPT-2's own init) from a preset name or a config. */
  static init(config: string | GPT2Config, seed = 0): GPT2Model {
    const cfg =
      typeof config === 'string' ? presetConfig(config) : validateConfig(config, 'config');
    if (!Number.isInteger(seed) || seed < 0)
      throw expectedError('seed', 'a non-negative integer', seed);
    return new GPT2Model(cfg, new (native().Model)(cfg, seed));
  }

  /** Loads a Hugging Face GPT-2 folder, or a hub name ("gpt2") from the local cache. */
  static async fromPretrained(
    nameOrDir: string,
    options: { revision?: string } = {},
  ): Promise<GPT2Model> {
    const dir = resolveModelDir(nameOrDir, options.revision);
    const cfg = readConfig(dir);
    const files = weightFiles(dir);
    const model = new GPT2Model(cfg, new (native().Model)(cfg, 0));
    try {
      await model.native.loadWeights(files);
    } catch (err) {
      // The addon's message names the file and tensor; the code says what kind of failure it is.
      throw new DpoError('ERR_DPO_CHECKPOINT', (err as Error).message, { cause: err });
    }
    return model;
  }

  numParameters(): number {
    return this.native.numParameters();
  }

  /** A new model with the same config and a copy of these weights. */
  clone(): GPT2Model {
    const copy = new GPT2Model(this.config, new (native().Model)(this.config, 0));
    copy.native.copyWeightsFrom(this.native);
    return copy;
  }

  /**
   * Writes config.json and model.safetensors (and the tokenizer when given) as transformers'
   * save_pretrained does, each file atomically.
   */
  async savePretrained(
    dir: string,
    options: { dtype?: 'float32' | 'float16' | 'bfloat16'; tokenizer?: Tokenizer } = {},
  ): Promise<void> {
    const dtype = options.dtype ?? 'float32';
    if (!['float32', 'float16', 'bfloat16'].includes(dtype)) {
      throw expectedError(
        'dtype',
        'float32, float16 or bfloat16',
        dtype,
        'training runs in float32; halve the file with bfloat16',
      );
    }
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
      throw new DpoError(
        'ERR_DPO_CONFIG',
        `expected ${dir} to be a folder, got a file; choose another output path`,
      );
    }
    await fs.promises.mkdir(dir, { recursive: true });
    await this.native.saveWeights(path.join(dir, 'model.safetensors'), dtype);
    await writeConfig(dir, this.config, dtype);
    if (options.tokenizer) await options.tokenizer.save(dir);
  }

  /**
   * Evaluation forward pass over right-padded rows: ids [B][T] (or a flat Int32Array with its
   * shape). Returns logits [B, T, V] or, with output 'hidden', the last hidden states [B, T, C].
   */
  async forward(
    ids: Int32Array | readonly (readonly number[])[],
    options: { shape?: [number, number]; output?: 'logits' | 'hidden' } = {},
  ): Promise<Tensor<'float32'>> {
    let flat: Int32Array;
    let shape: [number, number];
    if (ids instanceof Int32Array) {
      if (!options.shape)
        throw new DpoError(
          'ERR_DPO_CONFIG',
          'forward: a flat Int32Array needs options.shape = [B, T]',
        );
      flat = ids;
      shape = options.shape;
    } else {
      const rows = ids as readonly ArrayLike<number>[];
      const notRow = (row: unknown) => !Array.isArray(row) && !ArrayBuffer.isView(row);
      if (!Array.isArray(rows) || rows.length === 0 || rows.some(notRow)) {
        throw expectedError(
          'forward ids',
          'rows of token ids ([[15496, 995]])',
          Array.isArray(ids) ? '[]' : typeof ids,
          'pass one array of ids per sequence',
          'ERR_DPO_CONFIG',
        );
      }
      const T = rows[0].length;
      if (T === 0 || rows.some((row) => row.length !== T)) {
        throw new DpoError(
          'ERR_DPO_CONFIG',
          'forward: expected rows of one length T >= 1; right-pad them to one length',
        );
      }
      const raw: number[] = rows.flatMap((row) => Array.from(row as ArrayLike<number>));
      checkIds(raw, this.config.vocab_size, 'forward');
      flat = Int32Array.from(raw);
      shape = [rows.length, T];
    }
    checkIds(flat, this.config.vocab_size, 'forward');
    return this.native.forward(flat, shape, { output: options.output ?? 'logits' });
  }

  /** Continues `prompt` (token ids); returns the new ids only. */
  async generate(prompt: readonly number[], options: GenerateOptions = {}): Promise<number[]> {
    const o = {
      maxNewTokens: 64,
      temperature: 0,
      topK: 0,
      topP: 1,
      eosTokenId: 50256,
      seed: 0,
      useCache: true,
      ...options,
    };
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0)
      throw expectedError('maxNewTokens', 'an integer >= 0', o.maxNewTokens);
    if (!(o.temperature >= 0))
      throw expectedError('temperature', '>= 0', o.temperature, 'use 0 for greedy decoding');
    if (!Number.isInteger(o.topK) || o.topK < 0)
      throw expectedError('topK', 'an integer >= 0', o.topK, 'use 0 to keep every token');
    if (!(o.topP > 0 && o.topP <= 1)) throw expectedError('topP', 'in (0, 1]', o.topP);
    if (!Array.isArray(prompt) && !ArrayBuffer.isView(prompt)) {
      throw expectedError(
        'prompt',
        'an array of token ids (tokenizer.encode(text))',
        typeof prompt,
      );
    }
    const ids = Int32Array.from(prompt);
    if (ids.length === 0)
      throw expectedError(
        'prompt',
        'at least one token',
        '[]',
        'encode some text, or start from [50256]',
      );
    checkIds(prompt, this.config.vocab_size, 'generate');
    const out = await this.native.generate(ids, o);
    return Array.from(out);
  }
}
