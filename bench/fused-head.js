#!/usr/bin/env node
// The fused DPO head against the unfused libtorch head (logits for every position, log_softmax,
// gather, loss, autograd), side by side in one process over a grid of (pairs, T), V = 50257,
// C = 768: median forward + backward time and peak memory. Writes bench/results/fused-head.json.
//   node bench/fused-head.js            the default grid (a few minutes on 2 cores)
//   node bench/fused-head.js --quick    a tiny grid
//   --iters N (default 3)   --threads N (default: all cores)
//   --out FILE (default bench/results/fused-head.json; with --quick, fused-head-quick.json in the
//   system's temporary folder, so a quick run never replaces the recorded results)
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');

const USAGE = `usage: node bench/fused-head.js [--quick] [--iters N] [--threads N] [--out FILE]
  the fused DPO head against the unfused libtorch head, forward + backward, V = 50257, C = 768
  --quick      a tiny grid (seconds), written to the system's temporary folder by default
  --iters N    measured runs per configuration, the median is reported (default 3; 2 with --quick)
  --threads N  CPU threads (default: every core)
  --out FILE   where the JSON goes (default bench/results/fused-head.json)`;
{
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  const known = new Set(['--quick', '--iters', '--threads', '--out']);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i])) {
      console.error(`bench: unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
      process.exit(2);
    }
    if (argv[i] !== '--quick') i++; // skip the value
  }
}
const native = require('node-gyp-build')(root);

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name, fallback) => (option(name) === undefined ? fallback : Number(option(name)));
const quick = args.includes('--quick');
const iters = flag('--iters', quick ? 2 : 3);
if (args.includes('--threads')) native.setThreads(flag('--threads', os.cpus().length));

// Each row: a prompt of half the tokens (masked out of DPO), then its completion; no padding.
const V = 50257,
  C = 768;
const grid = quick
  ? [
      [1, 64],
      [2, 128],
    ]
  : [
      [1, 128],
      [2, 256],
      [4, 256],
      [4, 512],
    ];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b) => (b / (1 << 20)).toFixed(0);

async function main() {
  const results = [];
  console.log(
    `fused DPO head vs unfused libtorch head: V=${V} C=${C}, ${native.getThreads()} threads, ` +
      `median of ${iters}, BLAS ${native.buildInfo.blas || 'bundled'}`,
  );
  console.log(
    'peak memory: bytes held by the CPU allocator above the inputs (native.memory, a counting allocator)',
  );
  console.log(
    'pairs     T  completion   unfused ms   fused ms  speedup   unfused MiB  fused MiB  memory_reduction',
  );
  for (const [pairs, T] of grid) {
    const shape = { pairs, T, V, C, promptTokens: T / 2 };
    // A warm-up of each, then the measured runs; the two alternate so that neither gets a warmer machine.
    await native.kernel.benchHead({ ...shape, fused: true, iters: 1 });
    const fused = await native.kernel.benchHead({ ...shape, fused: true, iters });
    const unfused = await native.kernel.benchHead({ ...shape, fused: false, iters });
    const entry = {
      pairs,
      T,
      V,
      C,
      prompt_tokens: T / 2,
      completion_tokens_per_row: T / 2,
      fused_ms: median(fused.ms),
      unfused_ms: median(unfused.ms),
      fused_peak_bytes: fused.peakBytes,
      unfused_peak_bytes: unfused.peakBytes,
      chunk_bytes: fused.chunkBytes,
      speedup: median(unfused.ms) / median(fused.ms),
      memory_reduction: unfused.peakBytes / fused.peakBytes,
    };
    results.push(entry);
    console.log(
      `${String(pairs).padStart(5)} ${String(T).padStart(5)} ${String(T / 2).padStart(11)} ` +
        `${entry.unfused_ms.toFixed(0).padStart(12)} ${entry.fused_ms.toFixed(0).padStart(10)} ` +
        `${entry.speedup.toFixed(2).padStart(7)}x ${mib(entry.unfused_peak_bytes).padStart(13)} ` +
        `${mib(entry.fused_peak_bytes).padStart(10)} ${entry.memory_reduction.toFixed(1).padStart(16)}x`,
    );
  }
  const out = {
    benchmark: 'fused-head',
    description:
      'DPO head forward + backward (sigmoid loss): fused chunked kernel vs unfused libtorch autograd',
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0] && os.cpus()[0].model,
      threads: native.getThreads(),
    },
    torch: native.buildInfo.torchVersion,
    blas: native.buildInfo.blas,
    memory_measure:
      'peak bytes of the libtorch CPU allocator above what was held before the call (counting allocator, native.memory); inputs excluded, outputs (dhidden, dweight) included',
    iters,
    date: new Date().toISOString(),
    results,
  };
  const file = path.resolve(
    option('--out') ??
      (quick
        ? path.join(os.tmpdir(), 'fused-head-quick.json')
        : path.join(root, 'bench', 'results', 'fused-head.json')),
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n');
  fs.renameSync(tmp, file);
  console.log(`wrote ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
