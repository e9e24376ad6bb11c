// The build's contracts: one source list for CMake and node-gyp that names every native source,
// and a load failure that explains itself.
import fs from 'fs';
import path from 'path';
import t from 'tap';
import { explainLoadError } from '../src/native';

const root = path.resolve(__dirname, '..');
const sources = JSON.parse(
  fs.readFileSync(path.join(root, 'native/sources.gypi'), 'utf8'),
).variables;

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

t.test('native/sources.gypi lists every native source, and only existing ones', async (t) => {
  const listed = new Set<string>(Object.values(sources).flat() as string[]);
  for (const f of listed) t.ok(fs.existsSync(path.join(root, f)), `${f} exists`);
  const onDisk = [...walk(path.join(root, 'native')), ...walk(path.join(root, 'test'))]
    .map((f) => path.relative(root, f))
    .filter((f) => /\.(cc|cu)$/.test(f));
  for (const f of onDisk) t.ok(listed.has(f), `${f} is listed in native/sources.gypi`);
  t.ok(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').includes('native/sources.gypi'));
  t.ok(fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8').includes('native/sources.gypi'));
});

t.test('load failures name the cause and the fix', async (t) => {
  t.match(
    explainLoadError(new Error('No native build was found for platform=linux')),
    /not built.*npm rebuild node-dpo/s,
  );
  t.match(
    explainLoadError(
      new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'),
    ),
    /libtorch.*missing at run time.*apt-get install -y libtorch-dev/s,
  );
  t.match(
    explainLoadError(new Error('libc10_cuda.so: cannot open shared object file')),
    /CUDA runtime is missing.*DPO_CUDA=OFF/s,
  );
  t.match(
    explainLoadError(
      new Error(
        'undefined symbol: _ZN3c106detail14torchCheckFailEPKcS2_jRKNSt7__cxx1112basic_string',
      ),
    ),
    /C\+\+ ABI mismatch.*Rebuild/s,
  );
});
