#!/usr/bin/env node
// The `dpo` command line: one subcommand per file in ./commands, registered here.
import { Command } from 'commander';
import { DpoError } from '../errors';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('dpo')
    .description('Fine-tune GPT-2 on human preferences with Direct Preference Optimization')
    .version(require('../../package.json').version)
    .showHelpAfterError();
  // Each command module adds its subcommands to `program`.
  for (const register of commandModules()) register(program);
  return program;
}

function commandModules(): Array<(program: Command) => void> {
  return [
    require('./commands/model').register,
    require('./commands/data').register,
  ];
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    const code = e instanceof DpoError ? ` [${e.code}]` : '';
    process.stderr.write(`dpo: error${code}: ${e.message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
