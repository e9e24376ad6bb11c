// Option parsers shared by the CLI commands: each names the flag in its error.
import { InvalidArgumentError } from 'commander';

export function intOption(flag: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected ${flag} an integer >= ${min}, got "${value}"`);
    }
    return n;
  };
}

export function floatOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) {
      throw new InvalidArgumentError(`expected ${flag} a number, got "${value}"`);
    }
    return n;
  };
}
