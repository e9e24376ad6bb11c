// SFTTrainer: supervised fine-tuning on prompt + completion rows, next-token loss on the
// completion only (prompt masked) by default, so a model is in-distribution before DPO.
import {
  makeSftBatches,
  readRows,
  resolveSource,
  SftBatch,
  TokenizedPair,
  TextPair,
  loadPreferencePairs,
  collateSft,
} from '../data';
import { DpoError } from '../errors';
import type { GPT2Model } from '../model/gpt2';
import type { Tokenizer } from '../tokenizer';
import { SFTConfig, sftConfig } from './config';
import { evalPrefixed, MetricsRecord, RunningMeans } from './metrics';
import { padIdOf, PreferenceDataset, toTokenized } from './dpo-trainer';
import { Trainer } from './trainer';

export interface SFTTrainerOptions {
  model: GPT2Model;
  tokenizer?: Tokenizer;
  args?: Partial<SFTConfig>;
  /** Preference pairs (their chosen completions are the targets) or prompt/completion pairs. */
  trainDataset: PreferenceDataset;
  evalDataset?: PreferenceDataset;
}

/**
 * Reads SFT examples from a source: rows with prompt + completion fields become pairs whose
 * chosen (and rejected) completion is that completion; preference rows keep their chosen one.
 */
export async function loadSftExamples(
  source: string,
  opts: { split?: string } = {},
): Promise<TextPair[]> {
  if (source.startsWith('builtin:')) return (await loadPreferencePairs(source)).pairs as TextPair[];
  const files = await resolveSource(source, opts);
  const out: TextPair[] = [];
  for (const file of files) {
    for await (const row of readRows(file)) {
      if ('error' in row) throw row.error;
      const v = row.value as Record<string, unknown>;
      if (v && typeof v === 'object' && typeof v.completion === 'string') {
        const prompt = typeof v.prompt === 'string' ? v.prompt : '';
        out.push({
          kind: 'text',
          prompt,
          chosen: v.completion,
          rejected: v.completion,
          origin: row.where,
        });
      } else {
        // preference rows: let the preference loader parse the whole source
        return (await loadPreferencePairs(source, { ...opts, skipBadRows: true })).pairs.filter(
          (p): p is TextPair => p.kind === 'text',
        );
      }
    }
  }
  return out;
}

export class SFTTrainer extends Trainer<SFTConfig, SftBatch> {
  protected readonly kind = 'sft';
  readonly trainPairs: TokenizedPair[];
  readonly evalPairs: TokenizedPair[];

  constructor(opts: SFTTrainerOptions) {
    const args = sftConfig(opts.args);
    super(opts.model, args, opts.tokenizer);
    this.trainPairs = toTokenized(opts.trainDataset, opts.tokenizer, args);
    this.evalPairs = opts.evalDataset ? toTokenized(opts.evalDataset, opts.tokenizer, args) : [];
    if (this.trainPairs.length === 0) {
      throw new DpoError(
        'ERR_DPO_DATA',
        'expected training examples, got none after tokenizing; check the data and maxLength',
      );
    }
  }

  protected makeEpochBatches(epoch: number): SftBatch[] {
    const a = this.args;
    return makeSftBatches(this.trainPairs, {
      batchSize: a.perDeviceTrainBatchSize,
      seed: a.seed + epoch,
      groupByLength: a.groupByLength,
      padId: padIdOf(this.model, this.tokenizer),
    });
  }

  // The loss mask: completion targets only, or every real target with completionOnlyLoss off.
  private maskOf(batch: SftBatch): Uint8Array {
    if (this.args.completionOnlyLoss) return batch.completionMask;
    const mask = new Uint8Array(batch.rows * batch.T);
    for (let r = 0; r < batch.rows; r++)
      mask.fill(1, r * batch.T, r * batch.T + batch.lengths[r] - 1);
    return mask;
  }

  protected async forwardBackward(batch: SftBatch, scale: number): Promise<Record<string, number>> {
    // forward + backward: mean next-token loss over the masked targets
    const out = await this.model.native.sftBackward(
      batch.inputIds,
      [batch.rows, batch.T],
      this.maskOf(batch),
      { train: true, scale },
    );
    return { loss: out.loss, num_tokens: out.tokens };
  }

  /**
   * Mean completion loss over the eval examples, eval_-prefixed (no dropout, no gradients).
   */
  async evaluate(): Promise<MetricsRecord | undefined> {
    if (this.evalPairs.length === 0) return undefined;
    const means = new RunningMeans();
    const B = this.args.perDeviceEvalBatchSize;
    for (let i = 0; i < this.evalPairs.length; i += B) {
      const batch = collateSft(this.evalPairs.slice(i, i + B), padIdOf(this.model, this.tokenizer));
      const out = await this.model.native.sftBackward(
        batch.inputIds,
        [batch.rows, batch.T],
        this.maskOf(batch),
        { train: false, computeGrad: false },
      );
      means.add({ loss: out.loss }, out.tokens);
    }
    return evalPrefixed(means.take());
  }
}
