// The training commands end to end, as a user runs them: `node dist/cli/main.js ...` on tiny
// inputs. CI runs `npm run build` before the tests; this file builds dist/ when it is missing.
import { execFileSync, spawn, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
if (!fs.existsSync(path.join(root, 'dist', 'cli', 'commands', 'train.js'))) {
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    { cwd: root },
  );
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-cli-train-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dpo(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: tmp,
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '2' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A tiny model (1 layer, 32 channels, GPT-2's vocabulary) and 24 built-in pairs as a file.
const model = path.join(tmp, 'tiny');
const data = path.join(tmp, 'pairs.jsonl');
t.before(() => {
  const r = dpo('init', '--out', model, '--n-layer', '1', '--n-embd', '32', '--n-positions', '32');
  if (r.code !== 0) throw new Error(r.err);
  const { builtinPreferenceDataset } = require('../src/data');
  fs.writeFileSync(
    data,
    builtinPreferenceDataset({ n: 24 })
      .map((p: any) => JSON.stringify({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }))
      .join('\n') + '\n',
  );
});

const fast = [
  '--per-device-train-batch-size',
  '4',
  '--logging-steps',
  '1',
  '--learning-rate',
  '1e-3',
];

t.test('--help on each training command', async (t) => {
  for (const cmd of ['sft', 'train', 'eval', 'score', 'demo']) {
    const r = dpo(cmd, '--help');
    t.equal(r.code, 0, cmd);
    t.match(r.out, new RegExp(`Usage: dpo ${cmd}`));
  }
  t.match(dpo('train', '--help').out, /--gradient-accumulation-steps <n>/);
  t.match(dpo('sft', '--help').out, /--completion-only-loss \[bool\]/);
});

t.test("config errors: the validator's message, exit 1", async (t) => {
  const r = dpo('train', '--model', model, '--data', data, '--beta', '-1', '--output-dir', 'x');
  t.equal(r.code, 1);
  t.match(
    r.err,
    'dpo: error [ERR_DPO_CONFIG]: expected beta > 0, got -1; beta scales the log-ratio, try 0.1',
  );
  fs.writeFileSync(path.join(tmp, 'bad.json'), JSON.stringify({ lossType: 'nope' }));
  const c = dpo('train', '--model', model, '--data', data, '--config', path.join(tmp, 'bad.json'));
  t.match(c.err, /expected lossType one of sigmoid, .*got "nope"/);
});

t.test('sft, then train with an eval split, eval, score', async (t) => {
  const sft = dpo(
    'sft',
    '--model',
    model,
    '--data',
    data,
    '--output-dir',
    'sft',
    '--max-steps',
    '3',
    ...fast,
  );
  t.equal(sft.code, 0, sft.err);
  t.match(sft.out, /sft step 3\/3 \| loss \d/);
  t.ok(fs.existsSync(path.join(tmp, 'sft', 'model.safetensors')));

  fs.writeFileSync(path.join(tmp, 'cfg.json'), JSON.stringify({ beta: 0.2, maxSteps: 4 }));
  const tr = dpo(
    'train',
    '--model',
    'sft',
    '--data',
    data,
    '--eval-split',
    '0.25',
    '--output-dir',
    'dpo',
    '--config',
    'cfg.json',
    '--eval-steps',
    '2',
    '--save-steps',
    '2',
    '--save-total-limit',
    '1',
    ...fast,
  );
  t.equal(tr.code, 0, tr.err);
  t.match(tr.out, /beta +0\.2/);
  t.match(tr.out, /dpo step 1\/4 \| loss 0\.6931 \| acc 0\.00/);
  t.match(tr.out, /dpo eval step 2 \| eval_loss \d/);
  const ckpts = fs.readdirSync(path.join(tmp, 'dpo')).filter((f) => f.startsWith('checkpoint-'));
  t.same(ckpts, ['checkpoint-4'], 'save-total-limit keeps the newest');
  for (const f of [
    'metrics.jsonl',
    'training_curves.svg',
    'model.safetensors',
    'config.json',
    'vocab.json',
  ]) {
    t.ok(fs.existsSync(path.join(tmp, 'dpo', f)), f);
  }

  const ev = dpo('eval', '--model', 'dpo', '--ref', 'sft', '--data', data, '--json');
  t.equal(ev.code, 0, ev.err);
  const m = JSON.parse(ev.out);
  t.equal(m.pairs, 24);
  for (const k of [
    'loss',
    'rewards/accuracies',
    'rewards/margins',
    'rewards/chosen',
    'rewards/rejected',
  ])
    t.type(m[k], 'number', k);
  t.match(
    dpo('eval', '--model', 'dpo', '--ref', 'sft', '--data', data).out,
    /rewards\/accuracies +\d\.\d{4}/,
  );

  const sc = dpo(
    'score',
    '--model',
    'dpo',
    '--ref',
    'sft',
    '--data',
    data,
    '--out',
    'scores.jsonl',
    '--emit-tokens',
  );
  t.equal(sc.code, 0, sc.err);
  const lines = fs
    .readFileSync(path.join(tmp, 'scores.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.equal(lines.length, 24);
  for (const k of [
    'chosen_logps',
    'rejected_logps',
    'ref_chosen_logps',
    'ref_rejected_logps',
    'chosen_reward',
    'rejected_reward',
    'prompt_ids',
    'chosen_ids',
  ]) {
    t.ok(k in lines[0], k);
  }
  const plain = dpo('score', '--model', 'dpo', '--data', data, '--out', 'plain.jsonl');
  t.equal(plain.code, 0, plain.err);
  t.notOk(
    'ref_chosen_logps' in
      JSON.parse(fs.readFileSync(path.join(tmp, 'plain.jsonl'), 'utf8').split('\n')[0]),
  );
});

t.test(
  'Ctrl-C: the step finishes, a loadable checkpoint, a resume hint; --resume continues',
  async (t) => {
    const child = spawn(
      process.execPath,
      [
        cli,
        'train',
        '--model',
        model,
        '--data',
        data,
        '--output-dir',
        'sig',
        '--max-steps',
        '400',
        '--save-steps',
        '0',
        ...fast,
      ],
      { cwd: tmp },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (/dpo step 2\/400/.test(out) && !child.killed) child.kill('SIGINT');
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
    t.equal(code, 130, out);
    const m = /interrupted at step (\d+); checkpoint (\S+)\nresume with: (.*)\n/.exec(out);
    t.ok(m, 'names the checkpoint and the resume command');
    const ckpt = path.resolve(tmp, m![2]);
    t.ok(fs.existsSync(path.join(ckpt, 'model.safetensors')));
    const { GPT2Model } = require('../src/model/gpt2');
    t.ok(await GPT2Model.fromPretrained(ckpt), 'the checkpoint loads');
    const again = dpo(
      'train',
      '--model',
      model,
      '--data',
      data,
      '--output-dir',
      'sig',
      '--max-steps',
      String(Number(m![1]) + 2),
      '--resume',
      '--save-steps',
      '0',
      ...fast,
    );
    // A different max-steps changes the schedule; resuming is still allowed and starts at the step.
    t.equal(again.code, 0, again.err);
    t.match(again.out, new RegExp(`resumed from .*checkpoint-${m![1]} at step ${m![1]}`));
  },
);

t.test('demo: SFT then DPO, a before/after table', async (t) => {
  const r = dpo(
    'demo',
    '--output-dir',
    'demo',
    '--sft-steps',
    '3',
    '--dpo-steps',
    '2',
    '--pairs',
    '40',
  );
  t.equal(r.code, 0, r.err);
  t.match(r.out, /after SFT +after DPO/);
  t.match(r.out, /preference accuracy, logp\(chosen\) > logp\(rejected\) +\d+\.\d% +\d+\.\d%/);
  t.match(r.out, /generations \(greedy; prompts whose answer changed first\):/);
});

t.test('bench runs the fused-head benchmark with its flags and writes its results', async (t) => {
  const out = path.join(tmp, 'bench.json');
  const r = dpo('bench', '--quick', '--iters', '1', '--out', out);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /fused DPO head vs unfused libtorch head: V=50257 C=768/);
  const results = JSON.parse(fs.readFileSync(out, 'utf8')).results;
  t.equal(results.length, 2);
  for (const e of results) {
    t.match(e, { V: 50257, C: 768 });
    t.ok(e.speedup > 0 && e.memory_reduction > 0 && e.fused_peak_bytes > 0, JSON.stringify(e));
  }
});

const HH = path.resolve(root, '..', 'shared', 'data', 'hh-rlhf-harmless-base-test.jsonl.gz');
t.test(
  'HH-RLHF: a short SFT + DPO run on the real file, held-out accuracy printed',
  { skip: !fs.existsSync(HH) && 'no HH-RLHF file' },
  async (t) => {
    const hhModel = path.join(tmp, 'tiny-128');
    t.equal(
      dpo('init', '--out', hhModel, '--n-layer', '2', '--n-embd', '64', '--n-positions', '128')
        .code,
      0,
    );
    const common = [
      '--data',
      HH,
      '--max-pairs',
      '200',
      '--eval-split',
      '0.2',
      '--eval-steps',
      '20',
      '--max-length',
      '128',
      '--max-prompt-length',
      '96',
      '--per-device-train-batch-size',
      '4',
      '--logging-steps',
      '10',
      '--save-steps',
      '0',
    ];
    const sft = dpo(
      'sft',
      ...common,
      '--model',
      hhModel,
      '--output-dir',
      'hh-sft',
      '--max-steps',
      '20',
      '--learning-rate',
      '1e-3',
    );
    t.equal(sft.code, 0, sft.err);
    const tr = dpo(
      'train',
      ...common,
      '--model',
      'hh-sft',
      '--output-dir',
      'hh-dpo',
      '--max-steps',
      '20',
      '--learning-rate',
      '1e-4',
    );
    t.equal(tr.code, 0, tr.err);
    const ev = /dpo eval step 20 \| (.*)/.exec(tr.out);
    t.ok(ev, 'a held-out eval line');
    t.comment(`HH-RLHF held-out after 20 DPO steps: ${ev?.[1]}`);
  },
);
