// DPOTrainer: Direct Preference Optimization (Rafailov et al. 2023) of a GPT-2 policy against a
// frozen reference, through the addon's fused log-prob + loss kernel.
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import {
  makeBatches,
  PreferenceBatch,
  PreferencePair,
  TokenizedPair,
  tokenizePairs,
} from '../data';
import { DpoError } from '../errors';
import { writeFileAtomic } from '../fsutil';
import type { GPT2Model } from '../model/gpt2';
import { native, NativeBatch, NativeDpoConfig, NativeDpoOutput, NativeModel } from '../native';
import type { Tokenizer } from '../tokenizer';
import { REF_FILE } from './checkpoint';
import { DPOConfig, dpoConfig } from './config';
import { dpoBatchMetrics, evalPrefixed, MetricsRecord, RunningMeans } from './metrics';
import { Trainer } from './trainer';

/** Pairs as text or ids (tokenized here with the config's limits), or already tokenized. */
export type PreferenceDataset = readonly PreferencePair[] | readonly TokenizedPair[];

export interface DPOTrainerOptions {
  model: GPT2Model;
  /** The frozen reference; default a copy of `model` as it is now. */
  refModel?: GPT2Model;
  tokenizer?: Tokenizer;
  args?: Partial<DPOConfig>;
  trainDataset: PreferenceDataset;
  evalDataset?: PreferenceDataset;
}

/** The id right padding uses: the tokenizer's pad id, else GPT-2's end-of-text if it fits. */
export function padIdOf(model: GPT2Model, tokenizer?: Tokenizer): number {
  if (tokenizer) return tokenizer.padTokenId;
  return Math.min(50256, model.config.vocab_size - 1);
}

/** Tokenizes text pairs with the config's limits; tokenized pairs pass through. */
export function toTokenized(
  data: PreferenceDataset,
  tokenizer: Tokenizer | undefined,
  limits: Pick<DPOConfig, 'maxLength' | 'maxPromptLength' | 'truncationMode'>,
): TokenizedPair[] {
  if (data.length === 0) return [];
  if ('promptIds' in data[0] && !('kind' in data[0])) return (data as TokenizedPair[]).slice();
  if (!tokenizer) {
    throw new DpoError(
      'ERR_DPO_CONFIG',
      'expected a tokenizer for a dataset of text pairs, got none; pass { tokenizer }',
    );
  }
  return tokenizePairs(data as PreferencePair[], tokenizer, limits).pairs;
}

export class DPOTrainer extends Trainer<DPOConfig, PreferenceBatch> {
  protected readonly kind = 'dpo';
  refModel?: GPT2Model;
  readonly trainPairs: TokenizedPair[];
  readonly evalPairs: TokenizedPair[];
  private readonly fn = native();
  private lossConfig: NativeDpoConfig;
  // Precomputed reference log-probs per pair: [chosen, rejected].
  private refCache?: Map<TokenizedPair, [number, number]>;

  constructor(opts: DPOTrainerOptions) {
    const args = dpoConfig(opts.args);
    super(opts.model, args, opts.tokenizer);
    this.trainPairs = toTokenized(opts.trainDataset, opts.tokenizer, args);
    this.evalPairs = opts.evalDataset ? toTokenized(opts.evalDataset, opts.tokenizer, args) : [];
    if (this.trainPairs.length === 0) {
      throw new DpoError(
        'ERR_DPO_DATA',
        'expected training pairs, got none after tokenizing; check the data and maxLength',
      );
    }
    if (!args.referenceFree) {
      this.refModel = opts.refModel ?? opts.model.clone();
      this.refModel.native.setRequiresGrad(false);
    }
    this.lossConfig = {
      lossType: args.lossType,
      beta: args.beta,
      labelSmoothing: args.labelSmoothing,
      referenceFree: args.referenceFree,
      simpoGamma: args.simpoGamma,
      rpoAlpha: args.rpoAlpha,
      discopopTau: args.discopopTau,
    };
  }

  protected makeEpochBatches(epoch: number): PreferenceBatch[] {
    const a = this.args;
    return makeBatches(this.trainPairs, {
      batchSize: a.perDeviceTrainBatchSize,
      seed: a.seed + epoch,
      groupByLength: a.groupByLength,
      padId: padIdOf(this.model, this.tokenizer),
    });
  }

  /** Reference log-probs of a batch [2B], chosen rows first; null when reference-free. */
  private async refLogpsOf(
    batch: PreferenceBatch,
    pairs?: readonly TokenizedPair[],
  ): Promise<Float32Array | null> {
    if (!this.refModel) return null;
    if (this.refCache && pairs) {
      const out = new Float32Array(batch.rows);
      // Pairs outside the precomputed data (evaluate(pairs) on new pairs) are scored now.
      if (pairs.every((p) => this.refCache!.has(p))) {
        pairs.forEach((p, b) => {
          const [chosen, rejected] = this.refCache!.get(p)!;
          out[b] = chosen;
          out[batch.pairs + b] = rejected;
        });
        return out;
      }
    }
    return this.fn.sequenceLogps(this.refModel.native, batch);
  }

  protected override async prepare(): Promise<void> {
    if (this.args.precomputeRefLogps && this.refModel) {
      this.refCache = await this.precomputeRefLogps([...this.trainPairs, ...this.evalPairs]);
    }
  }

  private batchPairs = new WeakMap<PreferenceBatch, TokenizedPair[]>();

  protected async forwardBackward(
    batch: PreferenceBatch,
    scale: number,
  ): Promise<Record<string, number>> {
    // reference: frozen log-probs of the same rows (precomputed, or one eval forward)
    const ref = await this.refLogpsOf(batch, this.pairsOf(batch));
    // policy: fused forward, loss and backward
    const out = await this.fn.dpoBackward(this.model.native, batch, ref, this.lossConfig, {
      train: !this.args.disableDropout,
      scale,
      computeGrad: true,
    });
    // bco_pair shifts its rewards by a running mean that the next step continues from
    this.lossConfig.bcoRunningMean = out.bcoRunningMean;
    this.lossConfig.bcoRunningCount = out.bcoRunningCount;
    return dpoBatchMetrics(out);
  }

  // Recovers the pairs of a batch from its chosen rows (for the precomputed-reference lookup).
  private pairsOf(batch: PreferenceBatch): TokenizedPair[] | undefined {
    if (!this.refCache) return undefined;
    let pairs = this.batchPairs.get(batch);
    if (!pairs) {
      pairs = [];
      for (let b = 0; b < batch.pairs; b++) {
        const key = rowKey(batch, b) + '|' + rowKey(batch, batch.pairs + b);
        const p = this.pairIndex().get(key);
        if (!p)
          throw new DpoError('ERR_DPO_DATA', 'internal: a batch row matches no precomputed pair');
        pairs.push(p);
      }
      this.batchPairs.set(batch, pairs);
    }
    return pairs;
  }

  private index?: Map<string, TokenizedPair>;
  private pairIndex(): Map<string, TokenizedPair> {
    if (!this.index) {
      this.index = new Map();
      for (const p of [...this.trainPairs, ...this.evalPairs]) {
        this.index.set(
          [...p.promptIds, -1, ...p.chosenIds].join(',') +
            '|' +
            [...p.promptIds, -1, ...p.rejectedIds].join(','),
          p,
        );
      }
    }
    return this.index;
  }

  /** Loss and reward metrics over the eval pairs (eval_-prefixed); no gradient, no dropout. */
  async evaluate(
    pairs: readonly TokenizedPair[] = this.evalPairs,
  ): Promise<MetricsRecord | undefined> {
    if (pairs.length === 0) return undefined;
    const m = await evaluatePairs(
      this.model,
      this.refModel ?? null,
      pairs,
      {
        ...this.lossConfig,
        batchSize: this.args.perDeviceEvalBatchSize,
        padId: padIdOf(this.model, this.tokenizer),
      },
      this.refCache ? (batch, b) => this.refLogpsOf(batch, b) : undefined,
    );
    return evalPrefixed(m);
  }

  /**
   * Scores every pair with the reference once and keeps the results in a cache file named by a
   * hash of the reference weights and the token ids scored (which fix tokenizer, data and limits).
   */
  async precomputeRefLogps(
    pairs: readonly TokenizedPair[],
  ): Promise<Map<TokenizedPair, [number, number]>> {
    const ref = this.refModel!;
    const hash = crypto.createHash('sha256');
    for (const name of ref.native.parameterNames()) {
      const p = ref.native.getParameter(name).data;
      hash.update(name).update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    }
    for (const p of pairs)
      hash.update(Int32Array.from([...p.promptIds, -1, ...p.chosenIds, -2, ...p.rejectedIds, -3]));
    const key = hash.digest('hex').slice(0, 32);
    const dir =
      this.args.refLogpsCacheDir || path.join(os.homedir(), '.cache', 'node-dpo', 'ref-logps');
    const file = path.join(dir, `${key}.f32`);

    let values: Float32Array;
    if (fs.existsSync(file) && fs.statSync(file).size === pairs.length * 8) {
      const buf = fs.readFileSync(file);
      values = new Float32Array(buf.buffer, buf.byteOffset, pairs.length * 2).slice();
      this.emit('refLogps', { cached: true, file, pairs: pairs.length });
    } else {
      values = new Float32Array(pairs.length * 2);
      const B = this.args.perDeviceEvalBatchSize;
      for (let i = 0; i < pairs.length; i += B) {
        const chunk = pairs.slice(i, i + B);
        const batch = makeBatches(chunk, {
          batchSize: chunk.length,
          shuffle: false,
          padId: padIdOf(ref, this.tokenizer),
        })[0];
        const logps = await this.fn.sequenceLogps(ref.native, batch);
        for (let b = 0; b < chunk.length; b++) {
          values[2 * (i + b)] = logps[b];
          values[2 * (i + b) + 1] = logps[chunk.length + b];
        }
      }
      fs.mkdirSync(dir, { recursive: true });
      await writeFileAtomic(file, new Uint8Array(values.buffer));
      this.emit('refLogps', { cached: false, file, pairs: pairs.length });
    }
    const map = new Map<TokenizedPair, [number, number]>();
    pairs.forEach((p, i) => map.set(p, [values[2 * i], values[2 * i + 1]]));
    return map;
  }

  /**
   * TR-DPO (Gorbatovski et al. 2024): every refModelSyncSteps steps the reference moves toward
   * the policy, ref = alpha * policy + (1 - alpha) * ref.
   */
  protected override async afterStep(step: number): Promise<void> {
    const a = this.args;
    if (!a.syncRefModel || !this.refModel || step % a.refModelSyncSteps !== 0) return;
    await mixWeights(this.refModel, this.model, a.refModelMixupAlpha);
  }

  protected override lossState(): Record<string, number> | undefined {
    if (this.args.lossType !== 'bco_pair') return undefined;
    return {
      bcoRunningMean: this.lossConfig.bcoRunningMean ?? 0,
      bcoRunningCount: this.lossConfig.bcoRunningCount ?? 0,
    };
  }

  protected override restoreLossState(state: Record<string, number>): void {
    this.lossConfig.bcoRunningMean = state.bcoRunningMean;
    this.lossConfig.bcoRunningCount = state.bcoRunningCount;
  }

  protected override checkpointRefModel(): GPT2Model | undefined {
    return this.args.syncRefModel ? this.refModel : undefined;
  }

  protected override async restoreRefModel(dir: string): Promise<void> {
    if (this.refModel) await this.refModel.native.loadWeights([path.join(dir, REF_FILE)]);
  }
}

const rowKey = (batch: PreferenceBatch, r: number) => {
  const ids = Array.from(batch.inputIds.subarray(r * batch.T, r * batch.T + batch.lengths[r]));
  ids.splice(batch.promptLengths[r], 0, -1);
  return ids.join(',');
};

/** target = alpha * source + (1 - alpha) * target (TR-DPO's soft update), in the addon. */
export async function mixWeights(
  target: GPT2Model,
  source: GPT2Model,
  alpha: number,
): Promise<void> {
  await target.native.mixWeightsFrom(source.native, alpha);
}

export interface EvaluateOptions extends NativeDpoConfig {
  batchSize: number;
  padId?: number; // default: GPT-2's end-of-text when the vocabulary has it
}

/**
 * DPO loss and reward metrics of `policy` against `ref` (null: reference-free) over `pairs`,
 * averaged per pair; no gradient, no dropout. Also `logps/accuracies`: the fraction of pairs
 * where the policy alone gives the chosen completion the higher log-prob.
 */
export async function evaluatePairs(
  policy: GPT2Model,
  ref: GPT2Model | null,
  pairs: readonly TokenizedPair[],
  opts: EvaluateOptions,
  refLogpsOf?: (batch: PreferenceBatch, pairs: TokenizedPair[]) => Promise<Float32Array | null>,
): Promise<Record<string, number>> {
  const fn = native();
  const means = new RunningMeans();
  for (let i = 0; i < pairs.length; i += opts.batchSize) {
    const chunk = pairs.slice(i, i + opts.batchSize);
    const batch = makeBatches(chunk, {
      batchSize: chunk.length,
      shuffle: false,
      padId: opts.padId ?? padIdOf(policy),
    })[0];
    const refLogps = refLogpsOf
      ? await refLogpsOf(batch, chunk)
      : ref
        ? await fn.sequenceLogps(ref.native, batch)
        : null;
    const out = await fn.dpoBackward(policy.native, batch, refLogps, opts, {
      train: false,
      scale: 0,
      computeGrad: false,
    });
    let own = 0;
    for (let b = 0; b < chunk.length; b++) own += out.chosenLogps[b] > out.rejectedLogps[b] ? 1 : 0;
    means.add({ ...dpoBatchMetrics(out), 'logps/accuracies': own / chunk.length }, chunk.length);
  }
  return means.take();
}
