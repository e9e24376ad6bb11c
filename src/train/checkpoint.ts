// Checkpoints: outputDir/checkpoint-<step>/ holds a Hugging Face model folder plus the trainer
// state (optimizer moments, schedule position, data position, RNG), written to a temporary
// folder and renamed into place, so a crash never leaves a half-written checkpoint.
import fs from 'fs';
import path from 'path';
import { DpoError } from '../errors';
import { writeFileAtomic, writeJsonAtomic } from '../fsutil';
import type { GPT2Model } from '../model/gpt2';
import type { NativeAdamW } from '../native';
import type { Tokenizer } from '../tokenizer';

export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.pt'; // libtorch's archive of the AdamW state, as HF's Trainer names it
export const RNG_FILE = 'rng.bin';
export const REF_FILE = 'ref_model.safetensors';

/** What trainer_state.json holds (TRL's names where TRL has the field). */
export interface TrainerState {
  global_step: number;
  max_steps: number;
  epoch: number;
  num_train_epochs: number;
  logging_steps: number;
  eval_steps: number;
  save_steps: number;
  train_batch_size: number;
  seed: number;
  log_history: Record<string, number>[];
  best_metric: number | null;
  /** Where the next optimizer step reads: epoch index and micro-batch index in that epoch. */
  data_position: { epoch: number; batch: number };
  steps_per_epoch: number;
  rng_saved: boolean;
  optimizer_saved: boolean;
  ref_model_saved: boolean;
  trainer: 'sft' | 'dpo';
  config: Record<string, unknown>;
  /** State of the loss that carries across steps (bco_pair's running mean). */
  loss_state?: Record<string, number>;
}

export interface CheckpointParts {
  model: GPT2Model;
  tokenizer?: Tokenizer;
  optimizer: NativeAdamW;
  refModel?: GPT2Model; // saved only when it changes during training (TR-DPO)
  state: TrainerState;
}

export const checkpointName = (step: number) => `checkpoint-${step}`;

/** Writes outputDir/checkpoint-<step> atomically; returns its path. */
export async function saveCheckpoint(outputDir: string, parts: CheckpointParts): Promise<string> {
  const step = parts.state.global_step;
  const final = path.join(outputDir, checkpointName(step));
  const tmp = path.join(outputDir, `.${checkpointName(step)}.tmp-${process.pid}`);
  await fs.promises.rm(tmp, { recursive: true, force: true });
  await fs.promises.mkdir(tmp, { recursive: true });

  await parts.model.savePretrained(tmp, { tokenizer: parts.tokenizer });
  const state = { ...parts.state };
  if (parts.optimizer.saveState) {
    await parts.optimizer.saveState(path.join(tmp, OPTIMIZER_FILE));
    state.optimizer_saved = true;
  }
  const rng = parts.model.native.getRngState?.();
  if (rng) {
    await writeFileAtomic(path.join(tmp, RNG_FILE), rng);
    state.rng_saved = true;
  }
  if (parts.refModel) {
    await parts.refModel.native.saveWeights(path.join(tmp, REF_FILE), 'float32');
    state.ref_model_saved = true;
  }
  await writeJsonAtomic(path.join(tmp, STATE_FILE), state);

  // The rename makes the checkpoint appear whole; an older one of the same step is replaced.
  await fs.promises.rm(final, { recursive: true, force: true });
  await fs.promises.rename(tmp, final);
  return final;
}

/** Checkpoint folders of outputDir, oldest step first. */
/**
 * Removes the temporary folders of checkpoints whose writing was cut short (a second Ctrl-C, a
 * crash): they are never complete, and a finished checkpoint was renamed away from them.
 */
export function removeUnfinishedCheckpoints(outputDir: string): string[] {
  if (!fs.existsSync(outputDir)) return [];
  const stale = fs.readdirSync(outputDir).filter((f) => /^\.checkpoint-\d+\.tmp-\d+$/.test(f));
  for (const f of stale) fs.rmSync(path.join(outputDir, f), { recursive: true, force: true });
  return stale;
}

export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: path.join(outputDir, m[0]) }))
    .filter((c) => fs.existsSync(path.join(c.dir, STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** Deletes all but the newest `limit` checkpoints (0 keeps all); returns the deleted folders. */
export async function rotateCheckpoints(outputDir: string, limit: number): Promise<string[]> {
  if (limit <= 0) return [];
  const all = listCheckpoints(outputDir);
  const old = all.slice(0, Math.max(0, all.length - limit)).map((c) => c.dir);
  for (const dir of old) await fs.promises.rm(dir, { recursive: true, force: true });
  return old;
}

/** The folder to resume from: a given path, or with `true` the newest in outputDir. */
export function resolveResume(outputDir: string, resume: string | boolean): string | undefined {
  if (resume === false) return undefined;
  if (resume === true) {
    const newest = listCheckpoints(outputDir).pop();
    if (!newest) {
      throw new DpoError(
        'ERR_DPO_NOT_FOUND',
        `expected a checkpoint-<step> folder in ${outputDir} to resume from, got none; train without --resume first`,
      );
    }
    return newest.dir;
  }
  if (!fs.existsSync(path.join(resume, STATE_FILE))) {
    throw new DpoError(
      'ERR_DPO_NOT_FOUND',
      `expected ${path.join(resume, STATE_FILE)} in the checkpoint to resume from, got none; pass a checkpoint-<step> folder`,
    );
  }
  return resume;
}

export function readTrainerState(dir: string): TrainerState {
  const file = path.join(dir, STATE_FILE);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as TrainerState;
  } catch (err) {
    throw new DpoError(
      'ERR_DPO_CHECKPOINT',
      `${file}: not readable JSON (${(err as Error).message})`,
    );
  }
}
