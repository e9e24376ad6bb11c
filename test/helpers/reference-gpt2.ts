// A plain-JavaScript GPT-2 forward pass (one sequence, float64), written from the architecture's
// definition: the independent computation the native model is checked against.

export type Weights = Record<string, { shape: readonly number[]; data: Float32Array }>;

export interface RefConfig {
  n_layer: number;
  n_head: number;
  n_embd: number;
  layer_norm_epsilon: number;
}

function layerNorm(x: number[], w: Float32Array, b: Float32Array, eps: number): number[] {
  const n = x.length;
  const mean = x.reduce((s, v) => s + v, 0) / n;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w[i] + b[i]);
}

// y = x W + b with W stored [in, out] (Hugging Face's Conv1D).
function conv1d(
  x: number[],
  W: { shape: readonly number[]; data: Float32Array },
  b: Float32Array,
): number[] {
  const [nIn, nOut] = W.shape;
  const y = Array.from(b, Number);
  for (let i = 0; i < nIn; i++) for (let j = 0; j < nOut; j++) y[j] += x[i] * W.data[i * nOut + j];
  return y;
}

const geluTanh = (x: number) =>
  0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Logits [T][V] for one sequence of token ids. */
export function referenceLogits(w: Weights, cfg: RefConfig, ids: number[]): number[][] {
  const C = cfg.n_embd,
    NH = cfg.n_head,
    hs = C / NH,
    eps = cfg.layer_norm_epsilon;
  const row = (name: string, r: number) =>
    Array.from(w[name].data.subarray(r * C, (r + 1) * C), Number);
  let x = ids.map((id, t) => row('wte.weight', id).map((v, c) => v + row('wpe.weight', t)[c]));
  for (let l = 0; l < cfg.n_layer; l++) {
    const p = (n: string) => w[`h.${l}.${n}`];
    const qkv = x.map((xt) =>
      conv1d(
        layerNorm(xt, p('ln_1.weight').data, p('ln_1.bias').data, eps),
        p('attn.c_attn.weight'),
        p('attn.c_attn.bias').data,
      ),
    );
    const attnOut = x.map((_, t) => {
      const y = new Array(C).fill(0);
      for (let h = 0; h < NH; h++) {
        const q = qkv[t].slice(h * hs, (h + 1) * hs);
        const scores = [];
        for (let s = 0; s <= t; s++) {
          const k = qkv[s].slice(C + h * hs, C + (h + 1) * hs);
          scores.push(q.reduce((acc, qi, i) => acc + qi * k[i], 0) / Math.sqrt(hs));
        }
        const m = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          for (let i = 0; i < hs; i++) y[h * hs + i] += (e[s] / z) * qkv[s][2 * C + h * hs + i];
        }
      }
      return conv1d(y, p('attn.c_proj.weight'), p('attn.c_proj.bias').data);
    });
    x = x.map((xt, t) => xt.map((v, c) => v + attnOut[t][c]));
    x = x.map((xt) => {
      const hdn = conv1d(
        layerNorm(xt, p('ln_2.weight').data, p('ln_2.bias').data, eps),
        p('mlp.c_fc.weight'),
        p('mlp.c_fc.bias').data,
      );
      const out = conv1d(hdn.map(geluTanh), p('mlp.c_proj.weight'), p('mlp.c_proj.bias').data);
      return xt.map((v, c) => v + out[c]);
    });
  }
  const V = w['wte.weight'].shape[0];
  return x.map((xt) => {
    const hf = layerNorm(xt, w['ln_f.weight'].data, w['ln_f.bias'].data, eps);
    const logits = [];
    for (let v = 0; v < V; v++)
      logits.push(hf.reduce((acc, hc, c) => acc + hc * w['wte.weight'].data[v * C + c], 0));
    return logits;
  });
}
