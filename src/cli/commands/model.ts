// `dpo init` (a freshly initialised GPT-2 folder) and `dpo generate` (sample from a model).
import { Command } from 'commander';
import fs from 'fs';
import path from 'path';
import { DpoError } from '../../errors';
import { GPT2Config, PRESETS, presetConfig } from '../../model/config';
import { GPT2Model, resolveModelDir } from '../../model/gpt2';
import { setThreads } from '../../native';
import { loadTokenizer } from '../../tokenizer';
import { floatOption, intOption } from '../options';

interface InitOptions {
  out: string;
  preset: string;
  seed: number;
  nLayer?: number;
  nHead?: number;
  nEmbd?: number;
  nPositions?: number;
  dtype: 'float32' | 'float16' | 'bfloat16';
  overwrite?: boolean;
}

export async function initCommand(o: InitOptions): Promise<GPT2Model> {
  const overrides: Partial<GPT2Config> = {};
  if (o.nLayer !== undefined) overrides.n_layer = o.nLayer;
  if (o.nHead !== undefined) overrides.n_head = o.nHead;
  if (o.nEmbd !== undefined) overrides.n_embd = o.nEmbd;
  if (o.nPositions !== undefined) overrides.n_positions = o.nPositions;
  const held = ['config.json', 'model.safetensors'].filter((f) =>
    fs.existsSync(path.join(o.out, f)),
  );
  if (held.length > 0 && !o.overwrite) {
    throw new DpoError(
      'ERR_DPO_CONFIG',
      `expected --out to name a new folder, got ${o.out} holding ` +
        `${held.join(' and ')}; choose another folder, or pass --overwrite to replace that model`,
    );
  }
  const model = GPT2Model.init(presetConfig(o.preset, overrides), o.seed);
  await model.savePretrained(o.out, { dtype: o.dtype, tokenizer: await loadTokenizer() });
  return model;
}

export function register(program: Command): void {
  program
    .command('init')
    .description(
      'write a freshly initialised GPT-2 (config.json, model.safetensors, tokenizer) to a folder',
    )
    .requiredOption('--out <dir>', 'output folder')
    .option('--preset <name>', `size preset: ${Object.keys(PRESETS).join(', ')}`, 'tiny')
    .option('--seed <n>', 'initialisation seed', intOption('--seed'), 0)
    .option('--n-layer <n>', 'override the number of layers', intOption('--n-layer', 1))
    .option('--n-head <n>', 'override the number of heads', intOption('--n-head', 1))
    .option('--n-embd <n>', 'override the channels', intOption('--n-embd', 1))
    .option('--n-positions <n>', 'override the context length', intOption('--n-positions', 1))
    .option('--dtype <dtype>', 'weights on disk: float32, float16 or bfloat16', 'float32')
    .option('--overwrite', 'replace a model already in --out')
    .option('--threads <n>', 'CPU threads (default: every core)', intOption('--threads', 1))
    .action(async (o: InitOptions & { threads?: number }) => {
      if (o.threads) setThreads(o.threads);
      const model = await initCommand(o);
      const c = model.config;
      console.log(
        `wrote ${o.out}: GPT-2 ${o.preset} (n_layer=${c.n_layer} n_head=${c.n_head} ` +
          `n_embd=${c.n_embd} n_positions=${c.n_positions}), ${(model.numParameters() / 1e6).toFixed(1)}M parameters, seed ${o.seed}`,
      );
    });

  program
    .command('generate')
    .description('continue a prompt with a model (greedy by default)')
    .requiredOption('--model <dir>', 'model folder or cached hub name (gpt2)')
    .requiredOption('--prompt <text>', 'text to continue')
    .option('--max-new-tokens <n>', 'tokens to add at most', intOption('--max-new-tokens'), 64)
    .option(
      '--temperature <t>',
      'sampling temperature; 0 is greedy',
      floatOption('--temperature'),
      0,
    )
    .option('--top-k <k>', 'keep the k most likely tokens (0: all)', intOption('--top-k'), 0)
    .option('--top-p <p>', 'nucleus sampling mass (1: all)', floatOption('--top-p'), 1)
    .option('--seed <n>', 'sampling seed', intOption('--seed'), 0)
    .option('--no-cache', 'recompute the whole prefix each token (slower; for checking)')
    .option('--threads <n>', 'CPU threads (default: every core)', intOption('--threads', 1))
    .action(async (o) => {
      if (o.threads) setThreads(o.threads);
      const dir = resolveModelDir(o.model);
      const model = await GPT2Model.fromPretrained(dir);
      const tokenizer = await loadTokenizer(dir);
      const ids = await model.generate(tokenizer.encode(o.prompt), {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        seed: o.seed,
        useCache: o.cache,
        eosTokenId: tokenizer.eosTokenId,
      });
      const text = tokenizer.decode(ids.filter((id) => id !== tokenizer.eosTokenId));
      console.log(o.prompt + text);
    });
}
