// The training loop shared by SFTTrainer and DPOTrainer: AdamW with a warmup schedule, gradient
// accumulation and clipping, logging, evaluation, atomic checkpoints, exact resume and a
// cooperative stop. Silent: everything it has to say goes out as events.
import { EventEmitter } from 'events';
import fs from 'fs';
import path from 'path';
import { DpoError } from '../errors';
import type { GPT2Model } from '../model/gpt2';
import { native, NativeAdamW } from '../native';
import type { TokenizedPair } from '../data';
import type { Tokenizer } from '../tokenizer';
import { plotMetrics } from '../plot/svg';
import {
  checkpointName,
  listCheckpoints,
  OPTIMIZER_FILE,
  readTrainerState,
  removeUnfinishedCheckpoints,
  resolveResume,
  RNG_FILE,
  rotateCheckpoints,
  saveCheckpoint,
  TrainerState,
} from './checkpoint';
import type { TrainingConfig } from './config';
import { MetricsFile, MetricsRecord, RunningMeans } from './metrics';
import { learningRateAt, warmupStepsOf } from './schedule';

/** A micro-batch as the loop sees it: rows of right-padded ids with their real lengths. */
export interface LoopBatch {
  rows: number;
  T: number;
  lengths: Int32Array;
}

export interface TrainBegin {
  maxSteps: number;
  stepsPerEpoch: number;
  startStep: number; // > 0 when resumed
  resumedFrom?: string;
  trainExamples: number;
  evalExamples: number;
}

export interface StepEvent {
  step: number;
  maxSteps: number;
  epoch: number;
  loss: number;
  learningRate: number;
  tokensPerSecond: number;
}

export interface TrainResult {
  globalStep: number;
  interrupted: boolean; // stop() was called: the run saved a checkpoint and can resume
  checkpoint?: string; // the newest checkpoint written
  logHistory: MetricsRecord[];
  outputDir: string;
}

/** Events: begin (TrainBegin), step (StepEvent), log, eval (MetricsRecord), save ({step, dir}), end (TrainResult). */
export abstract class Trainer<C extends TrainingConfig, B extends LoopBatch> extends EventEmitter {
  readonly model: GPT2Model;
  readonly tokenizer?: Tokenizer;
  readonly args: C;
  protected optimizer?: NativeAdamW;
  private stopRequested = false;
  private logHistory: MetricsRecord[] = [];
  private epochCache = new Map<number, B[]>();

  constructor(model: GPT2Model, args: C, tokenizer?: Tokenizer) {
    super();
    this.model = model;
    this.args = args;
    this.tokenizer = tokenizer;
  }

  /** Micro-batches of one epoch, in order; the same epoch gives the same batches. */
  protected abstract makeEpochBatches(epoch: number): B[];
  /** The tokenized training and evaluation pairs (SFT trains on their chosen responses). */
  abstract readonly trainPairs: TokenizedPair[];
  abstract readonly evalPairs: TokenizedPair[];
  /** Forward and backward of one micro-batch, gradients scaled by `scale`; its metrics. */
  protected abstract forwardBackward(batch: B, scale: number): Promise<Record<string, number>>;
  /** Metrics on the eval set, eval_-prefixed; undefined when there is no eval set. */
  abstract evaluate(): Promise<MetricsRecord | undefined>;
  /** Work before the first step (reference log-probs, for one). */
  protected async prepare(): Promise<void> {}
  /** Work after each optimizer step (TR-DPO's reference sync). */
  protected async afterStep(_step: number): Promise<void> {}
  /** Extra state to checkpoint: the reference when it changes during training. */
  protected checkpointRefModel(): GPT2Model | undefined {
    return undefined;
  }
  protected async restoreRefModel(_dir: string): Promise<void> {}
  /** Loss state that carries from step to step, saved with checkpoints. */
  protected lossState(): Record<string, number> | undefined {
    return undefined;
  }
  protected restoreLossState(_state: Record<string, number>): void {}
  protected abstract readonly kind: 'sft' | 'dpo';

  /** Asks the run to stop after the current optimizer step; it saves a checkpoint first. */
  stop(): void {
    this.stopRequested = true;
  }

  private epochBatches(epoch: number): B[] {
    let batches = this.epochCache.get(epoch);
    if (!batches) {
      this.epochCache.clear();
      batches = this.makeEpochBatches(epoch);
      this.epochCache.set(epoch, batches);
    }
    return batches;
  }

  /** Optimizer steps per epoch: micro-batches / accumulation, at least 1. */
  stepsPerEpoch(): number {
    return Math.max(
      1,
      Math.floor(this.epochBatches(0).length / this.args.gradientAccumulationSteps),
    );
  }

  /** Total optimizer steps of the run. */
  totalSteps(): number {
    const a = this.args;
    return a.maxSteps > 0
      ? a.maxSteps
      : Math.max(1, Math.ceil(this.stepsPerEpoch() * a.numTrainEpochs));
  }

  private running = false;

  /** Runs the training; a trainer runs one training at a time. */
  async train(): Promise<TrainResult> {
    if (this.running) {
      throw new DpoError(
        'ERR_DPO_CONFIG',
        'expected one train() at a time, got a second call while the ' +
          'first runs; await the first (a trainer and its model train one run at a time)',
      );
    }
    this.running = true;
    try {
      return await this.run();
    } finally {
      this.running = false;
    }
  }

  private async run(): Promise<TrainResult> {
    const a = this.args;
    const spe = this.stepsPerEpoch();
    const maxSteps = this.totalSteps();
    const warmup = warmupStepsOf(maxSteps, a.warmupSteps, a.warmupRatio);
    this.optimizer = new (native().AdamW)(this.model.native, {
      lr: a.learningRate,
      beta1: a.adamBeta1,
      beta2: a.adamBeta2,
      eps: a.adamEpsilon,
      weightDecay: a.weightDecay,
    });

    // resume: weights, optimizer moments, dropout RNG, log history, data position
    if (a.saveToDisk && fs.existsSync(a.outputDir) && !fs.statSync(a.outputDir).isDirectory()) {
      throw new DpoError(
        'ERR_DPO_CONFIG',
        `expected outputDir to be a folder, got the file ${a.outputDir}; choose another path`,
      );
    }
    if (a.saveToDisk) removeUnfinishedCheckpoints(a.outputDir);
    const resumeDir = a.saveToDisk ? resolveResume(a.outputDir, a.resumeFromCheckpoint) : undefined;
    if (a.saveToDisk && !resumeDir) {
      if (a.overwriteOutputDir) clearFinishedRun(a.outputDir);
      else refuseFinishedRun(a.outputDir);
    }
    let step = 0;
    let lastCheckpoint: string | undefined;
    if (resumeDir) {
      step = await this.restore(resumeDir);
      lastCheckpoint = resumeDir;
    }
    const metricsFile = a.saveToDisk ? new MetricsFile(a.outputDir, !resumeDir) : undefined;
    if (resumeDir) metricsFile?.truncateAfter(step);
    await this.prepare();
    this.emit('begin', {
      maxSteps,
      stepsPerEpoch: spe,
      startStep: step,
      resumedFrom: resumeDir,
      trainExamples: this.trainPairs.length,
      evalExamples: this.evalPairs.length,
    } satisfies TrainBegin);

    const means = new RunningMeans();
    let windowTokens = 0;
    let windowMs = 0;
    let lastEvalStep = -1;
    let lastSaveStep = resumeDir ? step : -1;
    const record = (m: MetricsRecord) => {
      this.logHistory.push(m);
      metricsFile?.append(m);
    };

    while (step < maxSteps && !this.stopRequested) {
      // data: the micro-batches of this optimizer step
      const epoch = Math.floor(step / spe);
      const first = (step % spe) * a.gradientAccumulationSteps;
      const micro = this.epochBatches(epoch).slice(first, first + a.gradientAccumulationSteps);
      const lr = learningRateAt(step, maxSteps, a.learningRate, a.lrSchedulerType, warmup);
      const started = performance.now();
      let stepTokens = 0;

      // forward + backward, accumulating gradients over the micro-batches
      this.optimizer.zeroGrad();
      let stepLoss = 0;
      for (const batch of micro) {
        const m = await this.guardNumeric(
          () => this.forwardBackward(batch, 1 / micro.length),
          step + 1,
          lastCheckpoint,
        );
        if (!Number.isFinite(m.loss))
          throw this.numericError('loss', m.loss, step + 1, lastCheckpoint);
        stepLoss += m.loss / micro.length;
        means.add(m);
        for (let r = 0; r < batch.rows; r++) stepTokens += batch.lengths[r];
      }

      // clip: the pre-clip norm is logged; a non-finite norm stops before the weights change
      const gradNorm = this.optimizer.clipGradNorm(
        a.maxGradNorm > 0 ? a.maxGradNorm : Number.MAX_VALUE,
      );
      if (!Number.isFinite(gradNorm))
        throw this.numericError('grad_norm', gradNorm, step + 1, lastCheckpoint);
      means.add({ grad_norm: gradNorm });

      // update
      await this.optimizer.step(lr);
      step++;
      await this.afterStep(step);
      const stepMs = performance.now() - started;
      windowTokens += stepTokens;
      windowMs += stepMs;

      // log: means since the last logging step
      const epochFloat = step / spe;
      if (step % a.loggingSteps === 0 || step === maxSteps) {
        const m: MetricsRecord = {
          ...means.take(),
          learning_rate: lr,
          epoch: round(epochFloat),
          tokens_per_second: windowMs > 0 ? (windowTokens * 1000) / windowMs : 0,
          step,
        };
        windowTokens = 0;
        windowMs = 0;
        record(m);
        this.emit('log', m);
      }
      this.emit('step', {
        step,
        maxSteps,
        epoch: epochFloat,
        loss: stepLoss,
        learningRate: lr,
        tokensPerSecond: stepMs > 0 ? (stepTokens * 1000) / stepMs : 0,
      } satisfies StepEvent);

      // eval
      if (a.evalSteps > 0 && step % a.evalSteps === 0) {
        const m = await this.evaluate();
        if (m) {
          record({ ...m, epoch: round(epochFloat), step });
          this.emit('eval', { ...m, epoch: round(epochFloat), step });
        }
        lastEvalStep = step;
      }

      // save
      if (a.saveToDisk && a.saveSteps > 0 && step % a.saveSteps === 0 && step < maxSteps) {
        lastCheckpoint = await this.save(step, maxSteps, spe);
        lastSaveStep = step;
      }
    }

    // the end: a last eval, a checkpoint, the final model and the plot
    const interrupted = step < maxSteps;
    if (!interrupted && lastEvalStep !== step) {
      const m = await this.evaluate();
      if (m) {
        record({ ...m, epoch: round(step / spe), step });
        this.emit('eval', { ...m, epoch: round(step / spe), step });
      }
    }
    if (a.saveToDisk) {
      if (lastSaveStep !== step) lastCheckpoint = await this.save(step, maxSteps, spe);
      if (!interrupted) {
        await this.model.savePretrained(a.outputDir, { tokenizer: this.tokenizer });
        if (a.plot && this.logHistory.length > 0) {
          const svg = plotMetrics(
            this.logHistory,
            `${this.kind.toUpperCase()} ${path.basename(path.resolve(a.outputDir))}`,
          );
          fs.writeFileSync(path.join(a.outputDir, 'training_curves.svg'), svg);
        }
      }
    }
    const result: TrainResult = {
      globalStep: step,
      interrupted,
      checkpoint: lastCheckpoint,
      logHistory: this.logHistory,
      outputDir: a.outputDir,
    };
    this.emit('end', result);
    return result;
  }

  private async save(step: number, maxSteps: number, spe: number): Promise<string> {
    const a = this.args;
    const state: TrainerState = {
      global_step: step,
      max_steps: maxSteps,
      epoch: round(step / spe),
      num_train_epochs: a.numTrainEpochs,
      logging_steps: a.loggingSteps,
      eval_steps: a.evalSteps,
      save_steps: a.saveSteps,
      train_batch_size: a.perDeviceTrainBatchSize,
      seed: a.seed,
      log_history: this.logHistory,
      best_metric: null,
      data_position: {
        epoch: Math.floor(step / spe),
        batch: (step % spe) * a.gradientAccumulationSteps,
      },
      steps_per_epoch: spe,
      rng_saved: false,
      optimizer_saved: false,
      ref_model_saved: false,
      trainer: this.kind,
      config: { ...a } as Record<string, unknown>,
      loss_state: this.lossState(),
    };
    const dir = await saveCheckpoint(a.outputDir, {
      model: this.model,
      tokenizer: this.tokenizer,
      optimizer: this.optimizer!,
      refModel: this.checkpointRefModel(),
      state,
    });
    await rotateCheckpoints(a.outputDir, a.saveTotalLimit);
    this.emit('save', { step, dir });
    return dir;
  }

  private async restore(dir: string): Promise<number> {
    const state = readTrainerState(dir);
    if (state.trainer !== this.kind) {
      throw new DpoError(
        'ERR_DPO_CHECKPOINT',
        `expected a ${this.kind} checkpoint in ${dir}, got a ${state.trainer} one; resume with the command that wrote it`,
      );
    }
    if (state.steps_per_epoch !== this.stepsPerEpoch()) {
      throw new DpoError(
        'ERR_DPO_CHECKPOINT',
        `expected ${state.steps_per_epoch} steps per epoch as in ${dir}, got ${this.stepsPerEpoch()}; ` +
          'resume with the same data, batch size and gradient accumulation',
      );
    }
    await this.model.native.loadWeights([path.join(dir, 'model.safetensors')]);
    if (state.optimizer_saved) await this.optimizer!.loadState(path.join(dir, OPTIMIZER_FILE));
    if (state.rng_saved) {
      this.model.native.setRngState(new Uint8Array(fs.readFileSync(path.join(dir, RNG_FILE))));
    }
    if (state.ref_model_saved) await this.restoreRefModel(dir);
    if (state.loss_state) this.restoreLossState(state.loss_state);
    this.logHistory = state.log_history.slice();
    return state.global_step;
  }

  private async guardNumeric<T>(
    fn: () => Promise<T>,
    step: number,
    lastCheckpoint?: string,
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as Error;
      // The addon's words for a NaN or infinite loss ("the loss is not finite").
      if (!(err instanceof DpoError) && /\bis not finite\b/.test(e.message)) {
        throw this.numericError('loss', NaN, step, lastCheckpoint, e);
      }
      throw err;
    }
  }

  private numericError(
    what: string,
    got: number,
    step: number,
    lastCheckpoint?: string,
    cause?: Error,
  ): DpoError {
    const kept = lastCheckpoint
      ? `the last good checkpoint, ${lastCheckpoint}, is kept`
      : 'no checkpoint was saved before it';
    return new DpoError(
      'ERR_DPO_NUMERIC',
      `expected a finite ${what} at step ${step}, got ${got}; the run stopped and ${kept}. ` +
        'Lower the learning rate, raise warmup, or check the data',
      { cause },
    );
  }
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

// A new run in a folder that holds another run's checkpoints or metrics would mix the two.
function previousRun(outputDir: string): string[] {
  return [...listCheckpoints(outputDir).map((c) => path.basename(c.dir)), 'metrics.jsonl'].filter(
    (f) => fs.existsSync(path.join(outputDir, f)),
  );
}

function clearFinishedRun(outputDir: string): void {
  for (const f of previousRun(outputDir))
    fs.rmSync(path.join(outputDir, f), { recursive: true, force: true });
}

function refuseFinishedRun(outputDir: string): void {
  const held = previousRun(outputDir);
  if (held.length > 0) {
    throw new DpoError(
      'ERR_DPO_CONFIG',
      `expected an outputDir without a previous run, got ${outputDir} holding ${held.slice(0, 3).join(', ')}; ` +
        'resume it (resumeFromCheckpoint, --resume), choose another folder, or start over with ' +
        'overwriteOutputDir (--overwrite-output-dir)',
    );
  }
}

export { checkpointName, listCheckpoints };
