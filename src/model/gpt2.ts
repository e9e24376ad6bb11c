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
      throw new DpoError('ERR_DPO_NOT_FOUND', `${nameOrDir} is a file; pass the model folder that holds config.json`);
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
      throw new DpoError('ERR_DPO_CHECKPOINT', `${index}: not valid JSON (${(err as Error).message})`);
    }
    if (!map || typeof map !== 'object') {
      throw new DpoError('ERR_DPO_CHECKPOINT', `${index}: no weight_map object`);
    }
    return [...new Set(Object.values(map))].map((f) => path.join(dir, f));
  }
  if (fs.existsSync(path.join(dir, 'pytorch_model.bin'))) {
    throw new DpoError('ERR_DPO_UNSUPPORTED',
      `${dir} holds only pytorch_model.bin (a pickle), which node-dpo does not read. Convert it once ` +
      'with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)');
  }
  throw new DpoError('ERR_DPO_NOT_FOUND', `${dir} has no model.safetensors (nor model.safetensors.index.json)`);
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
    const cfg = typeof config === 'string' ? presetConfig(config) : validateConfig(config, 'config');
    if (!Number.isInteger(seed) || seed < 0) throw expectedError('seed', 'a non-negative integer', seed);
    return new GPT2Model(cfg, new (native().Model)(cfg, seed));
  }

  /** Loads a Hugging Face GPT-2 folder, or a hub name ("gpt2") from the local cache. */
  static async fromPretrained(nameOrDir: string, options: { revision?: string } = {}): Promise<GPT2Model> {
    const dir = resolveModelDir(nameOrDir, options.revision);
    const cfg = readConfig(dir);
    const files = weightFiles(dir);
    const model = new GPT2Model(cfg, new (native().Model)(cfg, 0));
    await model.native.loadWeights(files);
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
  async savePretrained(dir: string, options: { dtype?: 'float32' | 'float16' | 'bfloat16'; tokenizer?: Tokenizer } = {}): Promise<void> {
    const dtype = options.dtype ?? 'float32';
    await fs.promises.mkdir(dir, { recursive: true });
    await this.native.saveWeights(path.join(dir, 'model.safetensors'), dtype);
    await writeConfig(dir, this.config, dtype);
    if (options.tokenizer) await options.tokenizer.save(dir);
  }

  /**
   * Evaluation forward pass over right-padded rows: ids [B][T] (or a flat Int32Array with its
   * shape). Returns logits [B, T, V] or, with output 'hidden', the last hidden states [B, T, C].
   */
  async forward(ids: Int32Array | readonly (readonly number[])[], options: { shape?: [number, number]; output?: 'logits' | 'hidden' } = {}): Promise<Tensor<'float32'>> {
    let flat: Int32Array;
    let shape: [number, number];
    if (ids instanceof Int32Array) {
      if (!options.shape) throw new DpoError('ERR_DPO_CONFIG', 'forward: a flat Int32Array needs options.shape = [B, T]');
      flat = ids;
      shape = options.shape;
    } else {
      const T = ids[0]?.length ?? 0;
      if (ids.some((row) => row.length !== T)) {
        throw new DpoError('ERR_DPO_CONFIG', 'forward: rows differ in length; pad them to one length T');
      }
      flat = Int32Array.from(ids.flat());
      shape = [ids.length, T];
    }
    return this.native.forward(flat, shape, { output: options.output ?? 'logits' });
  }

  /** Continues `prompt` (token ids); returns the new ids only. */
  async generate(prompt: readonly number[], options: GenerateOptions = {}): Promise<number[]> {
    const o = { maxNewTokens: 64, temperature: 0, topK: 0, topP: 1, eosTokenId: 50256, seed: 0, useCache: true, ...options };
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw expectedError('maxNewTokens', 'an integer >= 0', o.maxNewTokens);
    if (!(o.temperature >= 0)) throw expectedError('temperature', '>= 0', o.temperature, 'use 0 for greedy decoding');
    if (!Number.isInteger(o.topK) || o.topK < 0) throw expectedError('topK', 'an integer >= 0', o.topK, 'use 0 to keep every token');
    if (!(o.topP > 0 && o.topP <= 1)) throw expectedError('topP', 'in (0, 1]', o.topP);
    const out = await this.native.generate(Int32Array.from(prompt), o);
    return Array.from(out);
  }
}
