// Learning-rate schedules: linear warmup from 0, then constant, linear or cosine decay to 0, as
// transformers' get_scheduler computes them.
import type { LrSchedulerType } from './config';

/** Warmup steps: warmupSteps when > 0, else ceil(warmupRatio * totalSteps). */
export function warmupStepsOf(
  totalSteps: number,
  warmupSteps: number,
  warmupRatio: number,
): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * totalSteps);
}

/**
 * The learning rate for optimizer step `step` (0-based, the step about to be taken) of
 * `totalSteps`: peak * step / warmup during warmup, then the schedule's decay.
 */
export function learningRateAt(
  step: number,
  totalSteps: number,
  peak: number,
  type: LrSchedulerType,
  warmup: number,
): number {
  if (type === 'constant') return peak;
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  if (type === 'constant_with_warmup') return peak;
  const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
  if (type === 'linear') return peak * Math.max(0, 1 - progress);
  // cosine: half a period, from peak to 0
  return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
