#!/usr/bin/env node
// `npm install` step: finds libtorch (installing Debian's when allowed), builds the addon with
// cmake-js from CMakeLists.txt, and warns when the BLAS in use is the slow reference one.
//   LIBTORCH=DIR            build against an unpacked libtorch
//   DPO_NO_APT=1            never run apt-get; print the commands instead
//   DPO_CUDA=ON|OFF|AUTO    CUDA kernels (AUTO: when nvcc is found)
//   DPO_CUDA_ARCHITECTURES  e.g. "80;90" (default)
//   DPO_JOBS                parallel compile jobs (default: cores)
//   DPO_BUILD_DIR           build folder (default: build, where node-gyp-build looks)
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibtorch } = require('./find-libtorch');

const root = path.resolve(__dirname, '..');
const TORCH_PACKAGES = ['libtorch-dev', 'libopenblas0-pthread'];
const log = (msg) => process.stderr.write(`node-dpo: ${msg}\n`);

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
  return r.status === 0;
}

function canApt() {
  return (
    process.platform === 'linux' &&
    typeof process.getuid === 'function' &&
    process.getuid() === 0 &&
    spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0
  );
}

const onPath = (tool) =>
  spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;

// The Debian packages the build needs that this machine lacks, and why.
function missingPackages(torch) {
  const missing = [];
  if (!torch) missing.push(...TORCH_PACKAGES);
  if (!fs.existsSync('/usr/include/nlohmann/json.hpp')) missing.push('nlohmann-json3-dev');
  if (!onPath('cmake')) missing.push('cmake');
  if (!onPath('c++') && !onPath('g++')) missing.push('g++');
  return missing;
}

function installDeps(packages, reason) {
  const fix = [
    'sudo apt-get update',
    `sudo apt-get install -y ${packages.join(' ')}`,
    '# or point LIBTORCH at an unpacked libtorch (https://pytorch.org, "LibTorch" C++ download)',
    '# or install PyTorch for Python: its libtorch is found automatically (CUDA builds included)',
  ].join('\n  ');
  if (process.env.DPO_NO_APT || !canApt()) {
    log(`${reason}. Install it and run npm install again:\n  ${fix}`);
    process.exit(1);
  }
  log(
    `${reason}; installing Debian's ${packages.join(', ')} with apt-get (DPO_NO_APT=1 turns this off)`,
  );
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (
    !run('apt-get', ['update', '-qq'], { env }) ||
    !run('apt-get', ['install', '-y', '-qq', ...packages], { env })
  ) {
    log(`apt-get failed. Install the packages yourself:\n  ${fix}`);
    process.exit(1);
  }
}

function main() {
  let torch = findLibtorch();
  const missing = missingPackages(torch);
  if (missing.length > 0) {
    const reason = torch
      ? `the build needs ${missing.join(', ')}, which are not installed`
      : 'libtorch was not found (no LIBTORCH, no Python torch, no libtorch-dev)';
    installDeps(missing, reason);
    torch = findLibtorch();
    if (!torch) {
      log('libtorch is still not found after installing libtorch-dev');
      process.exit(1);
    }
  }
  log(`building against libtorch from ${torch.source}${torch.cuda ? ' (CUDA)' : ''}`);

  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs =
    process.env.DPO_JOBS ||
    String(os.availableParallelism ? os.availableParallelism() : os.cpus().length);
  const buildDir = process.env.DPO_BUILD_DIR || 'build';
  const args = [cmakeJs, 'compile', '--out', buildDir, '--parallel', jobs];
  if (torch.prefix) args.push(`--CDCMAKE_PREFIX_PATH=${torch.prefix}`);
  if (process.env.DPO_CUDA) args.push(`--CDDPO_CUDA=${process.env.DPO_CUDA}`);
  if (process.env.DPO_CUDA_ARCHITECTURES)
    args.push(`--CDDPO_CUDA_ARCHITECTURES=${process.env.DPO_CUDA_ARCHITECTURES}`);
  if (!run(process.execPath, args)) {
    log('the addon failed to build; the compiler output above says why');
    process.exit(1);
  }

  // The BLAS check needs the addon loaded.
  try {
    const addon = require(path.resolve(root, buildDir, 'Release', 'dpo_native.node'));
    const info = addon.buildInfo;
    if (info.blasIsReference) {
      log(
        `WARNING: matrix products use the slow reference BLAS (${info.blas}), about 30x slower.\n` +
          '  Fix: sudo apt-get install -y libopenblas0-pthread',
      );
    }
    log(`built: libtorch ${info.torchVersion}, BLAS ${info.blas || 'bundled with libtorch'}`);
  } catch (err) {
    log(`the addon was built but does not load: ${err.message}`);
    process.exit(1);
  }
}

main();
