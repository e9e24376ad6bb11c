// GPT-2 configs: Hugging Face's config.json (read, validated, written) and the size presets.
import fs from 'fs';
import path from 'path';
import { DpoError, expectedError } from '../errors';
import { writeJsonAtomic } from '../fsutil';
import type { NativeGPT2Config } from '../native';

export type GPT2Config = NativeGPT2Config;

export const PRESETS = {
  // A small model for tests and the demo: GPT-2's vocabulary, 2 layers of 128 channels.
  tiny: { n_layer: 2, n_head: 2, n_embd: 128, n_positions: 256 },
  gpt2: { n_layer: 12, n_head: 12, n_embd: 768, n_positions: 1024 },
  'gpt2-medium': { n_layer: 24, n_head: 16, n_embd: 1024, n_positions: 1024 },
  'gpt2-large': { n_layer: 36, n_head: 20, n_embd: 1280, n_positions: 1024 },
  'gpt2-xl': { n_layer: 48, n_head: 25, n_embd: 1600, n_positions: 1024 },
} as const;

export type PresetName = keyof typeof PRESETS;

export const DEFAULT_CONFIG: GPT2Config = {
  n_layer: 12,
  n_head: 12,
  n_embd: 768,
  n_positions: 1024,
  vocab_size: 50257,
  layer_norm_epsilon: 1e-5,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  resid_pdrop: 0.1,
  initializer_range: 0.02,
  tie_word_embeddings: true,
};

export function presetConfig(name: string, overrides: Partial<GPT2Config> = {}): GPT2Config {
  if (!(name in PRESETS)) {
    throw expectedError('preset', `one of ${Object.keys(PRESETS).join(', ')}`, name);
  }
  return validateConfig(
    { ...DEFAULT_CONFIG, ...PRESETS[name as PresetName], ...overrides },
    'preset ' + name,
  );
}

const INTEGER_FIELDS = ['n_layer', 'n_head', 'n_embd', 'n_positions', 'vocab_size'] as const;
const RATE_FIELDS = ['embd_pdrop', 'attn_pdrop', 'resid_pdrop'] as const;

/** Checks a config; `where` names its source (a file) in messages. */
export function validateConfig(cfg: GPT2Config, where: string): GPT2Config {
  const bad = (field: string, expected: string, got: unknown, fix: string) =>
    new DpoError(
      'ERR_DPO_CHECKPOINT',
      `${where}: expected ${field} ${expected}, got ${JSON.stringify(got)}; ${fix}`,
    );
  for (const f of INTEGER_FIELDS) {
    if (!Number.isInteger(cfg[f]) || cfg[f] < 1)
      throw bad(f, 'a positive integer', cfg[f], 'fix config.json');
  }
  if (cfg.n_embd % cfg.n_head !== 0) {
    throw bad(
      'n_embd',
      `divisible by n_head=${cfg.n_head}`,
      cfg.n_embd,
      'choose n_embd = n_head * head size',
    );
  }
  for (const f of RATE_FIELDS) {
    if (typeof cfg[f] !== 'number' || !(cfg[f] >= 0 && cfg[f] < 1)) {
      throw bad(f, 'a dropout rate in [0, 1)', cfg[f], 'fix config.json');
    }
  }
  if (!(cfg.layer_norm_epsilon > 0))
    throw bad('layer_norm_epsilon', '> 0', cfg.layer_norm_epsilon, 'use 1e-5');
  return cfg;
}

/** Reads a Hugging Face GPT-2 config.json; unsupported architecture options are explicit errors. */
export function readConfig(dir: string): GPT2Config {
  const file = path.join(dir, 'config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      throw new DpoError(
        'ERR_DPO_NOT_FOUND',
        `${file} not found; a model folder needs config.json and model.safetensors`,
      );
    }
    throw new DpoError('ERR_DPO_CHECKPOINT', `${file}: not valid JSON (${e.message})`);
  }
  const unsupported = (what: string) =>
    new DpoError('ERR_DPO_UNSUPPORTED', `${file}: ${what} is not supported by node-dpo's GPT-2`);
  if (raw.model_type !== undefined && raw.model_type !== 'gpt2') {
    throw unsupported(`model_type "${raw.model_type}" (only "gpt2")`);
  }
  const act = raw.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw unsupported(`activation_function "${act}" (only the tanh GELU: gelu_new)`);
  }
  if (raw.n_inner != null && raw.n_inner !== 4 * Number(raw.n_embd)) {
    throw unsupported(`n_inner=${raw.n_inner} (only 4 * n_embd)`);
  }
  if (raw.scale_attn_by_inverse_layer_idx === true)
    throw unsupported('scale_attn_by_inverse_layer_idx');
  if (raw.scale_attn_weights === false) throw unsupported('scale_attn_weights=false');
  const pick = <K extends keyof GPT2Config>(k: K): GPT2Config[K] =>
    (raw[k] === undefined ? DEFAULT_CONFIG[k] : raw[k]) as GPT2Config[K];
  const cfg: GPT2Config = {
    n_layer: pick('n_layer'),
    n_head: pick('n_head'),
    n_embd: pick('n_embd'),
    n_positions: (raw.n_positions ?? raw.n_ctx ?? DEFAULT_CONFIG.n_positions) as number,
    vocab_size: pick('vocab_size'),
    layer_norm_epsilon: pick('layer_norm_epsilon'),
    embd_pdrop: pick('embd_pdrop'),
    attn_pdrop: pick('attn_pdrop'),
    resid_pdrop: pick('resid_pdrop'),
    initializer_range: pick('initializer_range'),
    tie_word_embeddings: pick('tie_word_embeddings'),
  };
  return validateConfig(cfg, file);
}

/** Writes config.json as transformers' GPT2Config.save_pretrained does. */
export function writeConfig(dir: string, cfg: GPT2Config, dtype = 'float32'): Promise<void> {
  return writeJsonAtomic(path.join(dir, 'config.json'), {
    _name_or_path: path.basename(path.resolve(dir)),
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: cfg.attn_pdrop,
    bos_token_id: 50256,
    embd_pdrop: cfg.embd_pdrop,
    eos_token_id: 50256,
    initializer_range: cfg.initializer_range,
    layer_norm_epsilon: cfg.layer_norm_epsilon,
    model_type: 'gpt2',
    n_ctx: cfg.n_positions,
    n_embd: cfg.n_embd,
    n_head: cfg.n_head,
    n_inner: null,
    n_layer: cfg.n_layer,
    n_positions: cfg.n_positions,
    reorder_and_upcast_attn: false,
    resid_pdrop: cfg.resid_pdrop,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    tie_word_embeddings: cfg.tie_word_embeddings,
    torch_dtype: dtype,
    use_cache: true,
    vocab_size: cfg.vocab_size,
  });
}
