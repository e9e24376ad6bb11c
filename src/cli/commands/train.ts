// `dpo sft`, `dpo train`, `dpo eval`, `dpo score`, `dpo demo` and `dpo bench`: the training
// commands. Config fields are kebab-case flags or a --config JSON file; flags win.
import { spawn } from 'child_process';
import { Command, Option } from 'commander';
import fs from 'fs';
import path from 'path';
import { SingleBar } from 'cli-progress';
import {
  loadPreferencePairs,
  makeBatches,
  PreferencePair,
  splitEval,
  tokenizePairs,
  TokenizedPair,
} from '../../data';
import { DpoError, expectedError } from '../../errors';
import { writeFileAtomic } from '../../fsutil';
import { GPT2Model, resolveModelDir } from '../../model/gpt2';
import { native, setThreads } from '../../native';
import { loadTokenizer, Tokenizer } from '../../tokenizer';
import { DPO_DEFAULTS, SFT_DEFAULTS, dpoConfig } from '../../train/config';
import { DEMO_DEFAULTS, DemoResult, DemoSnapshot, runDemo } from '../../train/demo';
import { DPOTrainer, evaluatePairs } from '../../train/dpo-trainer';
import { loadSftExamples, SFTTrainer } from '../../train/sft-trainer';
import type { Trainer, TrainBegin, TrainResult } from '../../train/trainer';
import type { MetricsRecord } from '../../train/metrics';
import { floatOption, intOption } from '../options';

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

// Fields that are not flags of their own (set by other flags or by the API only).
const NOT_FLAGS = new Set(['outputDir', 'resumeFromCheckpoint', 'saveToDisk', 'plot']);

/** Adds one flag per config field (kebab-case); values are checked by the config's validator. */
function addConfigFlags(cmd: Command, defaults: object): Command {
  for (const [field, value] of Object.entries(defaults)) {
    if (NOT_FLAGS.has(field)) continue;
    const flag = `--${kebab(field)}`;
    if (typeof value === 'boolean') {
      cmd.addOption(
        new Option(`${flag} [bool]`, `${field} (default ${value})`).argParser((v: string) =>
          v === 'false' ? false : v === 'true' || v === undefined ? true : v,
        ),
      );
    } else if (typeof value === 'number') {
      cmd.addOption(
        new Option(`${flag} <n>`, `${field} (default ${value})`).argParser((v: string) =>
          v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v,
        ),
      );
    } else {
      cmd.addOption(new Option(`${flag} <value>`, `${field}${value ? ` (default ${value})` : ''}`));
    }
  }
  return cmd;
}

/** The config a command asked for: --config file, then the flags given on the command line. */
function configFrom(cmd: Command, defaults: object): Record<string, unknown> {
  const o = cmd.opts();
  let cfg: Record<string, unknown> = {};
  if (o.config) {
    try {
      cfg = JSON.parse(fs.readFileSync(o.config, 'utf8'));
    } catch (err) {
      throw expectedError(
        '--config',
        'a readable JSON file of config fields',
        o.config,
        (err as Error).message,
      );
    }
  }
  for (const field of Object.keys(defaults)) {
    if (NOT_FLAGS.has(field)) continue;
    if (cmd.getOptionValueSource(field) === 'cli') cfg[field] = o[field];
  }
  if (o.outputDir) cfg.outputDir = o.outputDir;
  if (o.resume !== undefined) cfg.resumeFromCheckpoint = o.resume === true ? true : o.resume;
  if (o.plot === false) cfg.plot = false;
  return cfg;
}

function addDataFlags(cmd: Command): Command {
  return cmd
    .option('--split <name>', 'files to read from a folder or hub dataset (train, test)')
    .option('--data-dir <dir>', 'folder inside a hub dataset, e.g. harmless-base')
    .option('--prompt-key <name>', 'field holding the prompt')
    .option('--chosen-key <name>', 'field holding the chosen response')
    .option('--rejected-key <name>', 'field holding the rejected response')
    .option('--skip-bad-rows', 'count and skip malformed rows instead of stopping')
    .option(
      '--max-pairs <n>',
      'use only the first n pairs (after reading)',
      intOption('--max-pairs', 1),
    )
    .option('--threads <n>', 'CPU threads (default: every core)', intOption('--threads', 1));
}

async function readPairs(source: string, o: Record<string, any>): Promise<PreferencePair[]> {
  const { pairs } = await loadPreferencePairs(source, {
    split: o.split,
    dataDir: o.dataDir,
    promptKey: o.promptKey,
    chosenKey: o.chosenKey,
    rejectedKey: o.rejectedKey,
    skipBadRows: o.skipBadRows,
  });
  return o.maxPairs ? pairs.slice(0, o.maxPairs) : pairs;
}

/** Train and eval sets: --eval-data, else --eval-split of the training data, else none. */
async function trainEvalSets<T>(
  train: T[],
  o: Record<string, any>,
  read: (source: string) => Promise<T[]>,
  seed: number,
): Promise<{ train: T[]; eval: T[] }> {
  if (o.evalData) return { train, eval: await read(o.evalData) };
  if (o.evalSplit) return splitEval(train, { fraction: o.evalSplit, seed });
  return { train, eval: [] };
}

async function loadPolicy(
  o: Record<string, any>,
): Promise<{ model: GPT2Model; tokenizer: Tokenizer; source: string }> {
  if (o.model) {
    const dir = resolveModelDir(o.model);
    return {
      model: await GPT2Model.fromPretrained(dir),
      tokenizer: await loadTokenizer(dir),
      source: dir,
    };
  }
  const preset = o.preset ?? 'tiny';
  return {
    model: GPT2Model.init(preset, o.initSeed ?? 0),
    tokenizer: await loadTokenizer(),
    source: `preset ${preset}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting: a progress bar on a terminal, one line per logging step off it

const SHORT: [string, string, number][] = [
  ['loss', 'loss', 4],
  ['rewards/accuracies', 'acc', 2],
  ['rewards/margins', 'margin', 3],
  ['grad_norm', 'grad_norm', 2],
  ['learning_rate', 'lr', -1],
  ['tokens_per_second', 'tok/s', 0],
  ['eval_loss', 'eval_loss', 4],
  ['eval_rewards/accuracies', 'eval_acc', 2],
  ['eval_rewards/margins', 'eval_margin', 3],
];

export function formatMetrics(m: MetricsRecord): string {
  const parts: string[] = [];
  for (const [key, name, digits] of SHORT) {
    if (m[key] === undefined) continue;
    parts.push(`${name} ${digits < 0 ? m[key].toExponential(1) : m[key].toFixed(digits)}`);
  }
  return parts.join(' | ');
}

/** Prints a trainer's progress; returns a function that stops the bar. */
export function attachReporter(
  trainer: Trainer<any, any>,
  label: string,
  out = process.stdout,
): () => void {
  const tty = !!process.stderr.isTTY;
  let bar: SingleBar | undefined;
  let total = 0;
  const say = (line: string) =>
    bar ? process.stderr.write('\r\x1b[K' + line + '\n') : out.write(line + '\n');
  trainer.on('begin', (b: TrainBegin) => {
    total = b.maxSteps;
    out.write(
      `${label}: ${b.trainExamples} training examples, ${b.evalExamples} eval, ${b.maxSteps} steps ` +
        `(${b.stepsPerEpoch} per epoch)${b.resumedFrom ? `, resumed from ${b.resumedFrom} at step ${b.startStep}` : ''}\n`,
    );
    if (tty) {
      bar = new SingleBar({
        format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted} | {metrics}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 20,
      });
      bar.start(b.maxSteps, b.startStep, { metrics: '' });
    }
  });
  trainer.on('step', (s: { step: number; loss: number }) =>
    bar?.update(s.step, { metrics: `loss ${s.loss.toFixed(4)}` }),
  );
  trainer.on('log', (m: MetricsRecord) => {
    if (bar) bar.update(m.step, { metrics: formatMetrics(m) });
    else out.write(`${label} step ${m.step}/${total} | ${formatMetrics(m)}\n`);
  });
  trainer.on('eval', (m: MetricsRecord) =>
    say(`${label} eval step ${m.step} | ${formatMetrics(m)}`),
  );
  trainer.on('save', (s: { dir: string }) => {
    if (!bar) out.write(`${label} saved ${s.dir}\n`);
  });
  trainer.on('refLogps', (r: { cached: boolean; file: string; pairs: number }) =>
    say(
      `${label} reference log-probs of ${r.pairs} pairs ${r.cached ? 'read from' : 'written to'} ${r.file}`,
    ),
  );
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  trainer.on('end', stop);
  return stop;
}

/** Ctrl-C asks the trainer to stop after the current step; a second one exits at once. */
function onInterrupt(trainer: Trainer<any, any>): () => void {
  let count = 0;
  const handler = () => {
    count++;
    if (count > 1) process.exit(130);
    process.stderr.write(
      '\nstopping after this step and saving a checkpoint (Ctrl-C again to quit now)\n',
    );
    trainer.stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

async function runTrainer(
  trainer: Trainer<any, any>,
  label: string,
  resumeHint: string,
): Promise<TrainResult> {
  const detach = attachReporter(trainer, label);
  const release = onInterrupt(trainer);
  let result: TrainResult;
  try {
    result = await trainer.train();
  } finally {
    detach();
    release();
  }
  if (result.interrupted) {
    process.stdout.write(
      `interrupted at step ${result.globalStep}; checkpoint ${result.checkpoint}\n` +
        `resume with: ${resumeHint} --resume\n`,
    );
    process.exitCode = 130;
  } else {
    process.stdout.write(
      `${label}: done, ${result.globalStep} steps; model in ${result.outputDir}, ` +
        `metrics in ${path.join(result.outputDir, 'metrics.jsonl')}\n`,
    );
  }
  return result;
}

function resumeHintOf(): string {
  return ['dpo', ...process.argv.slice(2).filter((a) => a !== '--resume')].join(' ');
}

function commonTrainFlags(cmd: Command, defaults: object): Command {
  cmd
    .option(
      '--model <dir>',
      'starting model folder (or cached hub name); default: a fresh --preset',
    )
    .option('--preset <name>', 'size preset for a fresh model when --model is absent', 'tiny')
    .option('--init-seed <n>', 'initialisation seed of a fresh model', intOption('--init-seed'), 0)
    .requiredOption(
      '--data <file>',
      'training data: a file, folder, cached hub dataset or builtin:arithmetic',
    )
    .option('--eval-data <file>', 'held-out data')
    .option(
      '--eval-split <fraction>',
      'hold out this fraction of --data when --eval-data is absent',
      floatOption('--eval-split'),
    )
    .option(
      '--output-dir <dir>',
      'where checkpoints, metrics.jsonl, the plot and the final model go',
    )
    .option('--config <file>', 'a JSON file of config fields (camelCase); flags override it')
    .option(
      '--resume [checkpoint]',
      'continue from a checkpoint (default: the newest in --output-dir)',
    )
    .option('--no-plot', 'skip training_curves.svg');
  addDataFlags(cmd);
  return addConfigFlags(cmd, defaults);
}

function printConfig(label: string, cfg: Record<string, unknown>, extra: Record<string, unknown>) {
  const rows = Object.entries({ ...extra, ...cfg }).filter(([k]) => k !== 'config');
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(
    `${label} config\n` +
      rows.map(([k, v]) => `  ${k.padEnd(width)}  ${JSON.stringify(v)}`).join('\n') +
      '\n',
  );
}

// ---------------------------------------------------------------------------------------------
// Commands

export function register(program: Command): void {
  const sft = program
    .command('sft')
    .description(
      'supervised fine-tuning on chosen (or prompt/completion) responses, prompt masked',
    );
  commonTrainFlags(sft, SFT_DEFAULTS).action(async (_o, cmd: Command) => {
    const o = cmd.opts();
    if (o.threads) setThreads(o.threads);
    const given = configFrom(cmd, SFT_DEFAULTS);
    given.outputDir ??= 'sft-output';
    const { model, tokenizer, source } = await loadPolicy(o);
    const read = async (s: string) => {
      const ex = await loadSftExamples(s, { split: o.split });
      return o.maxPairs ? ex.slice(0, o.maxPairs) : ex;
    };
    const sets = await trainEvalSets(
      await read(o.data),
      o,
      read,
      (given.seed as number) ?? SFT_DEFAULTS.seed,
    );
    const trainer = new SFTTrainer({
      model,
      tokenizer,
      trainDataset: sets.train,
      evalDataset: sets.eval,
      args: given,
    });
    printConfig('sft', trainer.args as unknown as Record<string, unknown>, {
      model: source,
      data: o.data,
    });
    await runTrainer(trainer, 'sft', resumeHintOf());
  });

  const train = program
    .command('train')
    .description('DPO training of --model against a frozen reference (a copy of it, or --ref)');
  commonTrainFlags(train, DPO_DEFAULTS).option(
    '--ref <dir>',
    'reference model folder (default: a frozen copy of the starting model)',
  );
  train.action(async (_o, cmd: Command) => {
    const o = cmd.opts();
    if (o.threads) setThreads(o.threads);
    const given = configFrom(cmd, DPO_DEFAULTS);
    given.outputDir ??= 'dpo-output';
    const { model, tokenizer, source } = await loadPolicy(o);
    const refModel = o.ref ? await GPT2Model.fromPretrained(resolveModelDir(o.ref)) : undefined;
    const sets = await trainEvalSets(
      await readPairs(o.data, o),
      o,
      (s) => readPairs(s, o),
      (given.seed as number) ?? DPO_DEFAULTS.seed,
    );
    const trainer = new DPOTrainer({
      model,
      refModel,
      tokenizer,
      trainDataset: sets.train,
      evalDataset: sets.eval,
      args: given,
    });
    printConfig('dpo', trainer.args as unknown as Record<string, unknown>, {
      model: source,
      ref: o.ref ?? 'frozen copy of the model',
      data: o.data,
    });
    await runTrainer(trainer, 'dpo', resumeHintOf());
  });

  const evalCmd = program
    .command('eval')
    .description(
      'DPO loss, preference accuracy, margins and rewards of --model against --ref on --data',
    )
    .requiredOption('--model <dir>', 'policy model folder')
    .option('--ref <dir>', 'reference model folder (omit for reference-free rewards)')
    .requiredOption('--data <file>', 'preference data');
  addDataFlags(evalCmd);
  addScoringFlags(evalCmd)
    .option('--json', 'print the metrics as JSON')
    .action(async (o) => {
      if (o.threads) setThreads(o.threads);
      const { model, ref, pairs, loss } = await scoringSetup(o);
      const m = await evaluatePairs(model, ref, pairs, { ...loss, batchSize: o.batchSize });
      if (o.json) {
        process.stdout.write(JSON.stringify({ pairs: pairs.length, ...m }, null, 2) + '\n');
        return;
      }
      process.stdout.write(
        `${pairs.length} pairs\n` +
          Object.entries(m)
            .map(([k, v]) => `  ${k.padEnd(20)} ${v.toFixed(4)}`)
            .join('\n') +
          '\n',
      );
    });

  const score = program
    .command('score')
    .description('write per-pair log-probs (and implicit rewards, with --ref) as JSON lines')
    .requiredOption('--model <dir>', 'policy model folder')
    .option('--ref <dir>', 'reference model folder')
    .requiredOption('--data <file>', 'preference data')
    .requiredOption('--out <file>', 'output .jsonl file')
    .option('--emit-tokens', 'add the scored token ids (prompt, chosen, rejected)');
  addDataFlags(score);
  addScoringFlags(score).action(async (o) => {
    if (o.threads) setThreads(o.threads);
    const { model, ref, pairs, loss } = await scoringSetup(o);
    const fn = native();
    const lines: string[] = [];
    for (let i = 0; i < pairs.length; i += o.batchSize) {
      const chunk = pairs.slice(i, i + o.batchSize);
      const batch = makeBatches(chunk, { batchSize: chunk.length, shuffle: false })[0];
      const logps = await fn.sequenceLogps(model.native, batch);
      const refLogps = ref ? await fn.sequenceLogps(ref.native, batch) : undefined;
      chunk.forEach((p, b) => {
        const row: Record<string, unknown> = {
          index: i + b,
          chosen_logps: logps[b],
          rejected_logps: logps[chunk.length + b],
        };
        if (refLogps) {
          row.ref_chosen_logps = refLogps[b];
          row.ref_rejected_logps = refLogps[chunk.length + b];
          row.chosen_reward = loss.beta * (logps[b] - refLogps[b]);
          row.rejected_reward = loss.beta * (logps[chunk.length + b] - refLogps[chunk.length + b]);
          row.margin = (row.chosen_reward as number) - (row.rejected_reward as number);
        }
        if (o.emitTokens)
          Object.assign(row, {
            prompt_ids: p.promptIds,
            chosen_ids: p.chosenIds,
            rejected_ids: p.rejectedIds,
          });
        if (p.origin) row.origin = p.origin;
        lines.push(JSON.stringify(row));
      });
    }
    if (fs.existsSync(o.out) && fs.statSync(o.out).isDirectory()) {
      throw new DpoError(
        'ERR_DPO_CONFIG',
        `expected --out to name a file, got the folder ${o.out}; e.g. --out scores.jsonl`,
      );
    }
    fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
    await writeFileAtomic(o.out, lines.map((l) => l + '\n').join(''));
    process.stdout.write(`wrote ${lines.length} lines to ${o.out}\n`);
  });

  program
    .command('demo')
    .description(
      'no download: a tiny GPT-2, SFT then DPO on the built-in arithmetic pairs, before/after',
    )
    .option('--output-dir <dir>', 'where the two runs are written', DEMO_DEFAULTS.outputDir)
    .option(
      '--sft-steps <n>',
      'SFT optimizer steps',
      intOption('--sft-steps', 1),
      DEMO_DEFAULTS.sftSteps,
    )
    .option(
      '--dpo-steps <n>',
      'DPO optimizer steps',
      intOption('--dpo-steps', 1),
      DEMO_DEFAULTS.dpoSteps,
    )
    .option(
      '--pairs <n>',
      'built-in pairs before the held-out split',
      intOption('--pairs', 20),
      DEMO_DEFAULTS.pairs,
    )
    .option(
      '--seed <n>',
      'seed of data, initialisation and training',
      intOption('--seed'),
      DEMO_DEFAULTS.seed,
    )
    .option('--threads <n>', 'CPU threads (default: every core)', intOption('--threads', 1))
    .action(async (o) => {
      if (o.threads) setThreads(o.threads);
      const events = new (require('events').EventEmitter)();
      events.on('trainer', (t: Trainer<any, any>, label: string) => attachReporter(t, label));
      const started = performance.now();
      const r = await runDemo(
        {
          outputDir: o.outputDir,
          sftSteps: o.sftSteps,
          dpoSteps: o.dpoSteps,
          pairs: o.pairs,
          seed: o.seed,
        },
        events,
      );
      process.stdout.write(formatDemo(r, (performance.now() - started) / 1000));
    });

  program
    .command('bench')
    .description('benchmark the fused DPO head against the unfused one (runs bench/fused-head.js)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]', 'passed to bench/fused-head.js (--help lists them)')
    .action(async (args: string[]) => {
      const script = path.resolve(__dirname, '../../../bench/fused-head.js');
      if (!fs.existsSync(script))
        throw new DpoError(
          'ERR_DPO_NOT_FOUND',
          `expected ${script}, got none; bench/ is part of a checkout, not the npm package`,
        );
      const code: number = await new Promise((resolve) => {
        const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
        child.on('exit', (c) => resolve(c ?? 1));
      });
      process.exitCode = code;
    });
}

function addScoringFlags(cmd: Command): Command {
  return cmd
    .option('--beta <n>', 'beta of the implicit reward', floatOption('--beta'), DPO_DEFAULTS.beta)
    .option('--loss-type <name>', 'DPO loss for the reported loss', DPO_DEFAULTS.lossType)
    .option(
      '--label-smoothing <n>',
      'label smoothing of the loss',
      floatOption('--label-smoothing'),
      0,
    )
    .option('--batch-size <n>', 'pairs per forward', intOption('--batch-size', 1), 8)
    .option(
      '--max-length <n>',
      'prompt + completion tokens',
      intOption('--max-length', 2),
      DPO_DEFAULTS.maxLength,
    )
    .option(
      '--max-prompt-length <n>',
      'prompt tokens',
      intOption('--max-prompt-length', 1),
      DPO_DEFAULTS.maxPromptLength,
    )
    .option(
      '--truncation-mode <mode>',
      'keep_start or keep_end of a long prompt',
      DPO_DEFAULTS.truncationMode,
    )
    .option(
      '--eval-split <fraction>',
      'only the pairs that `dpo train --eval-split F --seed S` held out',
      floatOption('--eval-split'),
    )
    .option('--seed <n>', 'seed of that split', intOption('--seed'), DPO_DEFAULTS.seed);
}

async function scoringSetup(o: Record<string, any>) {
  const cfg = dpoConfig({
    beta: o.beta,
    lossType: o.lossType,
    labelSmoothing: o.labelSmoothing,
    maxLength: o.maxLength,
    maxPromptLength: o.maxPromptLength,
    truncationMode: o.truncationMode,
    perDeviceEvalBatchSize: o.batchSize,
  });
  const dir = resolveModelDir(o.model);
  const model = await GPT2Model.fromPretrained(dir);
  const ref = o.ref ? await GPT2Model.fromPretrained(resolveModelDir(o.ref)) : null;
  const tokenizer = await loadTokenizer(dir);
  const all = await readPairs(o.data, o);
  const chosen = o.evalSplit ? splitEval(all, { fraction: o.evalSplit, seed: o.seed }).eval : all;
  const pairs: TokenizedPair[] = tokenizePairs(chosen, tokenizer, cfg).pairs;
  if (pairs.length === 0) {
    throw new DpoError(
      'ERR_DPO_DATA',
      `expected pairs to score in ${o.data}, got none after reading, ` +
        'dropping degenerate pairs and truncating; `dpo data inspect` shows what happened to them',
    );
  }
  const loss = {
    lossType: cfg.lossType,
    beta: cfg.beta,
    labelSmoothing: cfg.labelSmoothing,
    referenceFree: ref === null,
    simpoGamma: cfg.simpoGamma,
    rpoAlpha: 0,
  };
  return { model, ref, pairs, loss };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function formatDemo(r: DemoResult, seconds: number): string {
  const row = (name: string, f: (s: DemoSnapshot) => string) =>
    `  ${name.padEnd(52)} ${f(r.afterSft).padStart(10)} ${f(r.afterDpo).padStart(10)}`;
  const lines = [
    '',
    'SFT on both responses of each pair taught the format and the candidate answers, not which is',
    "right; DPO (sigmoid loss, beta 0.1, with RPO's NLL term on the chosen answer) against the SFT",
    'model as reference learned the preference.',
    '',
    `held-out: ${r.evalPairs} pairs over ${r.evalPrompts} prompts (trained on ${r.trainPairs} pairs)`,
    `  ${''.padEnd(52)} ${'after SFT'.padStart(10)} ${'after DPO'.padStart(10)}`,
    row('preference accuracy, logp(chosen) > logp(rejected)', (s) => pct(s.preferenceAccuracy)),
    row('ground-truth score of greedy answers', (s) => pct(s.groundTruthScore)),
    row('exactly right answers', (s) => pct(s.exactAnswers)),
    row('DPO reward accuracy vs the SFT reference', (s) =>
      s.rewardAccuracy === undefined ? '-' : pct(s.rewardAccuracy),
    ),
    row('DPO reward margin', (s) =>
      s.rewardMargin === undefined ? '-' : s.rewardMargin.toFixed(3),
    ),
    '',
    'generations (greedy; prompts whose answer changed first):',
    ...r.samples.map(
      (s) =>
        `  ${JSON.stringify(s.prompt.trim()).padEnd(34)} right ${String(s.answer).padEnd(3)} SFT ${JSON.stringify(s.sft).padEnd(8)} DPO ${JSON.stringify(s.dpo)}`,
    ),
    '',
    `SFT ${r.sftSeconds.toFixed(0)} s, DPO ${r.dpoSeconds.toFixed(0)} s, total ${seconds.toFixed(0)} s; runs in ${r.outputDir}/sft and ${r.outputDir}/dpo`,
    '',
  ];
  return lines.join('\n');
}
