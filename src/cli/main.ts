#!/usr/bin/env node
// The `dpo` command line: one subcommand per file in ./commands, registered here.
import { Command } from 'commander';
import { DpoError } from '../errors';
import { native } from '../native';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('dpo')
    .description('Fine-tune GPT-2 on human preferences with Direct Preference Optimization')
    .version(require('../../package.json').version)
    .showHelpAfterError('(run with --help for the options)')
    .hook('preAction', (_program, command) => {
      // Commands that compute load the addon; say so when its BLAS is the slow reference one.
      if (command.name() === 'inspect') return;
      const info = native().buildInfo;
      if (info.blasIsReference) {
        process.stderr.write(
          `dpo: warning: matrix products use the slow reference BLAS (${info.blas}), ` +
            'about 30x slower; fix: sudo apt-get install -y libopenblas0-pthread\n',
        );
      }
    });
  // Each command module adds its subcommands to `program`.
  for (const register of commandModules()) register(program);
  return program;
}

function commandModules(): Array<(program: Command) => void> {
  return [
    require('./commands/model').register,
    require('./commands/data').register,
    require('./commands/train').register,
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
