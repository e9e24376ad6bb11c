// Hub names resolve to the local Hugging Face cache, as transformers lays it out; nothing is
// downloaded, and a name that is not cached says how to fetch it.
import fs from 'fs';
import os from 'os';
import path from 'path';
import t from 'tap';
import { hubCacheDir, resolveHubSnapshot } from '../src/hub';
import { GPT2Model, weightFiles } from '../src/model/gpt2';
import { DEFAULT_CONFIG } from '../src/model/config';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-hub-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('cache folder follows HF_HUB_CACHE, then HF_HOME', async (t) => {
  t.equal(hubCacheDir({ HF_HUB_CACHE: '/a/b' }), '/a/b');
  t.equal(hubCacheDir({ HF_HOME: '/h' }), '/h/hub');
  t.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
});

t.test('gpt2 and openai-community/gpt2 resolve to the cached snapshot', async (t) => {
  const cache = path.join(tmp, 'hub');
  const repo = path.join(cache, 'models--openai-community--gpt2');
  const snap = path.join(repo, 'snapshots', '0123abcd');
  fs.mkdirSync(snap, { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), '0123abcd\n');
  const model = GPT2Model.init(
    { ...DEFAULT_CONFIG, n_layer: 1, n_head: 2, n_embd: 8, n_positions: 16, vocab_size: 50257 },
    1,
  );
  await model.savePretrained(snap);
  const env = { HF_HUB_CACHE: cache };
  t.equal(resolveHubSnapshot('gpt2', 'models', 'main', env), snap);
  t.equal(resolveHubSnapshot('openai-community/gpt2', 'models', 'main', env), snap);
  const saved = process.env.HF_HUB_CACHE;
  process.env.HF_HUB_CACHE = cache;
  t.teardown(() => {
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
  });
  const loaded = await GPT2Model.fromPretrained('gpt2');
  t.same(
    Array.from(loaded.native.getParameter('h.0.mlp.c_fc.weight').data),
    Array.from(model.native.getParameter('h.0.mlp.c_fc.weight').data),
  );
});

t.test('a name that is not cached says so and how to get it', async (t) => {
  t.throws(
    () =>
      resolveHubSnapshot('gpt2-xl', 'models', 'main', { HF_HUB_CACHE: path.join(tmp, 'empty') }),
    {
      code: 'ERR_DPO_NOT_FOUND',
      message:
        /gpt2-xl is neither a local folder nor in the Hugging Face cache .*node-dpo never downloads.*huggingface-cli download gpt2-xl/,
    },
  );
});

t.test('sharded and pickle-only folders', async (t) => {
  const dir = path.join(tmp, 'sharded');
  fs.mkdirSync(dir);
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({
      weight_map: {
        a: 'model-00001.safetensors',
        b: 'model-00002.safetensors',
        c: 'model-00001.safetensors',
      },
    }),
  );
  t.same(weightFiles(dir), [
    path.join(dir, 'model-00001.safetensors'),
    path.join(dir, 'model-00002.safetensors'),
  ]);
  const pickle = path.join(tmp, 'pickle');
  fs.mkdirSync(pickle);
  fs.writeFileSync(path.join(pickle, 'pytorch_model.bin'), '');
  t.throws(() => weightFiles(pickle), {
    code: 'ERR_DPO_UNSUPPORTED',
    message: /pytorch_model\.bin \(a pickle\), which node-dpo does not read/,
  });
});

t.test('unsupported config.json options are explicit errors', async (t) => {
  const dir = path.join(tmp, 'cfg');
  fs.mkdirSync(dir);
  const write = (extra: object) =>
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ model_type: 'gpt2', n_layer: 1, n_head: 2, n_embd: 8, ...extra }),
    );
  write({ activation_function: 'relu' });
  await t.rejects(GPT2Model.fromPretrained(dir), {
    code: 'ERR_DPO_UNSUPPORTED',
    message: /activation_function "relu" \(only the tanh GELU: gelu_new\) is not supported/,
  });
  write({ n_head: 3 });
  await t.rejects(GPT2Model.fromPretrained(dir), {
    code: 'ERR_DPO_CHECKPOINT',
    message: /config\.json: expected n_embd divisible by n_head=3, got 8/,
  });
  write({ model_type: 'llama' });
  await t.rejects(GPT2Model.fromPretrained(dir), { message: /model_type "llama" \(only "gpt2"\)/ });
});
