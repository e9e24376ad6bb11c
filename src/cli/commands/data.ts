// `dpo data inspect FILE`: reads a preference dataset and shows what training will see.
import { Command, InvalidArgumentError } from 'commander';
import { formatInspectReport, inspectData, InspectOptions, TruncationMode } from '../../data';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError(`expected an integer >= 1, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value))
    throw new InvalidArgumentError(`expected an integer >= 0, got ${JSON.stringify(value)}`);
  return Number(value);
}

function truncationMode(value: string): TruncationMode {
  if (value !== 'keep_start' && value !== 'keep_end') {
    throw new InvalidArgumentError(`expected keep_start or keep_end, got ${JSON.stringify(value)}`);
  }
  return value;
}

interface InspectFlags {
  promptKey?: string;
  chosenKey?: string;
  rejectedKey?: string;
  split?: string;
  dataDir?: string;
  model?: string;
  maxLength?: number;
  maxPromptLength?: number;
  truncationMode?: TruncationMode;
  skipBadRows?: boolean;
  keepDegenerate?: boolean;
  examples: number;
  json?: boolean;
}

export function register(program: Command): void {
  const data = program.command('data').description('Read and check preference datasets');
  data
    .command('inspect')
    .description('Show the format, counts, token lengths, truncation and examples of a dataset')
    .argument(
      '<file>',
      'a .jsonl(.gz), .json or .parquet file, a folder, a hub dataset (owner/name) in the local cache, or builtin:arithmetic',
    )
    .option('--prompt-key <name>', 'field holding the prompt', 'prompt')
    .option('--chosen-key <name>', 'field holding the chosen response', 'chosen')
    .option('--rejected-key <name>', 'field holding the rejected response', 'rejected')
    .option('--split <name>', 'files to read from a folder or hub dataset, by name (train, test)')
    .option('--data-dir <dir>', 'folder inside a hub dataset, e.g. helpful-base')
    .option('--model <dir>', 'model folder whose tokenizer to use (default: GPT-2)')
    .option('--max-length <n>', 'limit on prompt + completion tokens', positiveInt)
    .option('--max-prompt-length <n>', 'limit on prompt tokens', positiveInt)
    .option(
      '--truncation-mode <mode>',
      'keep_start or keep_end of a long prompt',
      truncationMode,
      'keep_end',
    )
    .option('--skip-bad-rows', 'count and skip malformed rows instead of stopping')
    .option(
      '--keep-degenerate',
      'keep identical, empty and prefix pairs (they are counted either way)',
    )
    .option('--examples <n>', 'examples to render', nonNegativeInt, 3)
    .option('--json', 'print the report as JSON')
    .action(async (file: string, flags: InspectFlags) => {
      const opts: InspectOptions = {
        promptKey: flags.promptKey,
        chosenKey: flags.chosenKey,
        rejectedKey: flags.rejectedKey,
        split: flags.split,
        dataDir: flags.dataDir,
        modelDir: flags.model,
        maxLength: flags.maxLength,
        maxPromptLength: flags.maxPromptLength,
        truncationMode: flags.truncationMode,
        skipBadRows: flags.skipBadRows,
        keepDegenerate: flags.keepDegenerate,
        examples: flags.examples,
      };
      const report = await inspectData(file, opts);
      process.stdout.write(
        flags.json ? JSON.stringify(report, null, 2) + '\n' : formatInspectReport(report),
      );
    });
}
