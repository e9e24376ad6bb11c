// Error classes for node-dpo: every error carries a stable `code` so callers can branch on the
// kind of failure without parsing the message text.

export type ErrorCode =
  | 'ERR_DPO_CONFIG' // a config field or option has a bad value
  | 'ERR_DPO_DATA' // a data file or row is malformed
  | 'ERR_DPO_CHECKPOINT' // a model folder, config.json or safetensors file is malformed
  | 'ERR_DPO_NOT_FOUND' // a file, folder or cached hub entry is missing
  | 'ERR_DPO_TOKENIZER' // tokenizer files are missing or malformed
  | 'ERR_DPO_NATIVE' // the addon failed to load or a native operation failed
  | 'ERR_DPO_UNSUPPORTED' // a case this version does not support
  | 'ERR_DPO_NUMERIC'; // a NaN or infinite value stopped the computation

export class DpoError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DpoError';
    this.code = code;
  }
}

/**
 * The one message template for a bad value: what was expected, what came, and the fix.
 *   expectedError('beta', '> 0', -1, 'beta scales the log-ratio, try 0.1')
 *   -> "expected beta > 0, got -1; beta scales the log-ratio, try 0.1"
 */
export function expectedError(
  name: string,
  expected: string,
  got: unknown,
  fix?: string,
  code: ErrorCode = 'ERR_DPO_CONFIG',
): DpoError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  const message = `expected ${name} ${expected}, got ${shown}` + (fix ? `; ${fix}` : '');
  return new DpoError(code, message);
}
