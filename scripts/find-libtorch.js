#!/usr/bin/env node
// Finds libtorch for the build, in this order: the LIBTORCH folder the user names, the libtorch
// inside an installed Python torch (how a GPU machine gets CUDA libtorch), the system's
// (Debian's libtorch-dev). Used by scripts/build-addon.js (cmake-js) and binding.gyp (node-gyp).
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

function torchAt(root, source) {
  const config = path.join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  if (!fs.existsSync(config)) return null;
  const include = path.join(root, 'include');
  const cudaLib = ['libtorch_cuda.so', 'libc10_cuda.so'].some((f) =>
    fs.existsSync(path.join(root, 'lib', f)),
  );
  return {
    source,
    prefix: root,
    includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
    libDirs: [path.join(root, 'lib')],
    cuda: cudaLib,
  };
}

function fromPython() {
  const candidates = [process.env.PYTHON, 'python3', '/usr/bin/python3', 'python'].filter(Boolean);
  const script =
    'import os, torch; print(os.path.dirname(os.path.dirname(torch.utils.cmake_prefix_path)))';
  for (const py of [...new Set(candidates)]) {
    try {
      const root = execFileSync(py, ['-c', script], {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      })
        .toString()
        .trim();
      const found = root && torchAt(root, `python torch (${py})`);
      if (found) return found;
    } catch {
      // no python, or no torch in it
    }
  }
  return null;
}

function fromSystem() {
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib',
    '/usr/local/lib',
  ];
  for (const dir of dirs) {
    if (!fs.existsSync(path.join(dir, 'cmake', 'Torch', 'TorchConfig.cmake'))) continue;
    const include = dir.startsWith('/usr/local') ? '/usr/local/include' : '/usr/include';
    return {
      source: `system (${dir})`,
      prefix: '',
      includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
      libDirs: [dir],
      cuda: fs.existsSync(path.join(dir, 'libtorch_cuda.so')),
    };
  }
  return null;
}

/** Returns the libtorch to build against, or null when there is none. */
function findLibtorch(env = process.env) {
  if (env.LIBTORCH) {
    const found = torchAt(path.resolve(env.LIBTORCH), `LIBTORCH=${env.LIBTORCH}`);
    if (!found) {
      throw new Error(
        `LIBTORCH=${env.LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake; ` +
          'point it at an unpacked libtorch folder (the one holding include/, lib/ and share/)',
      );
    }
    return found;
  }
  return fromPython() || fromSystem();
}

module.exports = { findLibtorch };

// For binding.gyp: `node scripts/find-libtorch.js --include-dirs | --libs`
if (require.main === module) {
  const torch = findLibtorch();
  if (!torch) {
    process.stderr.write('libtorch not found; see scripts/build-addon.js for how to install it\n');
    process.exit(1);
  }
  const arg = process.argv[2];
  if (arg === '--include-dirs') console.log(torch.includeDirs.join(' '));
  else if (arg === '--libs') {
    const dirs = torch.libDirs.map((d) => `-L${d} -Wl,-rpath,${d}`).join(' ');
    console.log(`${dirs} -ltorch -ltorch_cpu -lc10`);
  } else console.log(JSON.stringify(torch, null, 2));
}
