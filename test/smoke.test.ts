// The package's entry point exports the public API and its version.
import t from 'tap';
import * as api from '../src/index';

t.equal(api.version, require('../package.json').version);
for (const name of [
  'GPT2Model',
  'loadTokenizer',
  'loadPreferencePairs',
  'tokenizePairs',
  'makeBatches',
  'DpoError',
  'setThreads',
]) {
  t.type((api as Record<string, unknown>)[name], 'function', `exports ${name}`);
}
