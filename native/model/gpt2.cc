// GPT-2 forward pass and initialisation.
#include "model/gpt2.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/init.h>

#include <unistd.h>

#include <cmath>
#include <stdexcept>

namespace dpo {

void GPT2Config::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument("config: " + msg);
  };
  need(n_layer >= 1, "expected n_layer >= 1, got " + std::to_string(n_layer));
  need(n_head >= 1, "expected n_head >= 1, got " + std::to_string(n_head));
  need(n_embd >= 1, "expected n_embd >= 1, got " + std::to_string(n_embd));
  need(n_embd % n_head == 0,
       "expected n_embd divisible by n_head, got n_embd=" + std::to_string(n_embd) +
           " n_head=" + std::to_string(n_head));
  need(n_positions >= 1, "expected n_positions >= 1, got " + std::to_string(n_positions));
  need(vocab_size >= 1, "expected vocab_size >= 1, got " + std::to_string(vocab_size));
  need(layer_norm_epsilon > 0, "expected layer_norm_epsilon > 0");
  for (double p : {embd_pdrop, attn_pdrop, resid_pdrop})
    need(p >= 0 && p < 1, "expected dropout rates in [0, 1), got " + std::to_string(p));

  // Refuse before allocating rather than be killed by the kernel's OOM killer halfway.
  const double bytes = 4.0 * num_parameters();
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  if (memory > 0 && bytes > memory) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "config: a GPT-2 of %.3g parameters needs %.1f GB for its fp32 weights alone, "
                  "more than this machine's %.1f GB; check n_layer, n_embd and vocab_size",
                  num_parameters(), bytes / 1e9, memory / 1e9);
    throw std::invalid_argument(msg);
  }
}

double GPT2Config::num_parameters() const {
  const double C = static_cast<double>(n_embd);
  // Per block: two layer norms (4C), attention (3C^2 + 3C, C^2 + C), MLP (4C^2 + 4C, 4C^2 + C).
  const double block = 12.0 * C * C + 13.0 * C;
  const double head = tie_word_embeddings ? 0.0 : static_cast<double>(vocab_size) * C;
  return (static_cast<double>(vocab_size) + static_cast<double>(n_positions)) * C +
         static_cast<double>(n_layer) * block + 2.0 * C + head;
}

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({in, out}));
  bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

LayerNormImpl::LayerNormImpl(int64_t C, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({C}));
  bias = register_parameter("bias", torch::zeros({C}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

EmbeddingImpl::EmbeddingImpl(int64_t n, int64_t C) {
  weight = register_parameter("weight", torch::empty({n, C}));
}

AttentionImpl::AttentionImpl(const GPT2Config& cfg) : n_head(cfg.n_head) {
  c_attn = register_module("c_attn", Conv1D(cfg.n_embd, 3 * cfg.n_embd));
  c_proj = register_module("c_proj", Conv1D(cfg.n_embd, cfg.n_embd));
}

MLPImpl::MLPImpl(const GPT2Config& cfg) {
  c_fc = register_module("c_fc", Conv1D(cfg.n_embd, 4 * cfg.n_embd));
  c_proj = register_module("c_proj", Conv1D(4 * cfg.n_embd, cfg.n_embd));
}

BlockImpl::BlockImpl(const GPT2Config& cfg) {
  ln_1 = register_module("ln_1", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  attn = register_module("attn", Attention(cfg));
  ln_2 = register_module("ln_2", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  mlp = register_module("mlp", MLP(cfg));
}

GPT2::GPT2(const GPT2Config& cfg, uint64_t seed) : cfg_(cfg) {
  cfg_.validate();
  gen_ = at::detail::createCPUGenerator(seed);
  wte = register_module("wte", Embedding(cfg.vocab_size, cfg.n_embd));
  wpe = register_module("wpe", Embedding(cfg.n_positions, cfg.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.n_layer; ++l) h->push_back(Block(cfg));
  ln_f = register_module("ln_f", LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  if (!cfg.tie_word_embeddings)
    lm_head = register_module("lm_head", Embedding(cfg.vocab_size, cfg.n_embd));
  reset_parameters(seed);
}

void GPT2::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator init_gen = at::detail::createCPUGenerator(seed);
  const double std = cfg_.initializer_range;
  const double proj_std = std / std::sqrt(2.0 * cfg_.n_layer);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find("ln_") != std::string::npos) {
      p.fill_(name.size() > 6 && name.substr(name.size() - 6) == "weight" ? 1.0 : 0.0);
    } else if (name.size() > 4 && name.substr(name.size() - 4) == "bias") {
      p.zero_();
    } else {
      bool residual = name.find("c_proj.weight") != std::string::npos;
      p.normal_(0.0, residual ? proj_std : std, init_gen);
    }
  }
}

torch::Tensor GPT2::lm_head_weight() const {
  return cfg_.tie_word_embeddings ? wte->weight : lm_head->weight;
}

torch::Tensor GPT2::dropout(const torch::Tensor& x, double p) {
  if (!is_training() || p == 0.0) return x;
  // A mask drawn from the model's own generator, so that dropout has no global state.
  torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - p, gen_);
  return x * keep / (1.0 - p);
}

torch::Tensor GPT2::attention(AttentionImpl& attn, const torch::Tensor& x, KVCache* cache,
                              int layer) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t NH = attn.n_head, hs = C / NH;

  // qkv: [B, T, 3C] -> q, k, v: [B, NH, T, hs]
  torch::Tensor qkv = attn.c_attn->forward(x);
  auto parts = qkv.split(C, /*dim=*/2);
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, NH, hs}).transpose(1, 2); };
  torch::Tensor q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);

  // Prepend the cached positions; this call's positions start at `past`.
  int64_t past = 0;
  if (cache) {
    if (static_cast<int>(cache->k.size()) > layer) {
      past = cache->k[layer].size(2);
      k = torch::cat({cache->k[layer], k}, 2);
      v = torch::cat({cache->v[layer], v}, 2);
      cache->k[layer] = k;
      cache->v[layer] = v;
    } else {
      cache->k.push_back(k);
      cache->v.push_back(v);
    }
  }
  const int64_t Tk = past + T;

  // att: [B, NH, T, Tk]; query t (absolute past + t) sees keys 0 .. past + t.
  torch::Tensor att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hs)));
  if (T > 1) {
    torch::Tensor future = torch::ones({T, Tk}, torch::dtype(torch::kBool).device(x.device()))
                               .triu(past + 1);
    att = att.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  att = dropout(torch::softmax(att, -1), cfg_.attn_pdrop);
  torch::Tensor y = torch::matmul(att, v);  // [B, NH, T, hs]
  y = y.transpose(1, 2).contiguous().view({B, T, C});
  return dropout(attn.c_proj->forward(y), cfg_.resid_pdrop);
}

torch::Tensor GPT2::mlp(MLPImpl& m, const torch::Tensor& x) {
  torch::Tensor hidden = torch::gelu(m.c_fc->forward(x), "tanh");
  return dropout(m.c_proj->forward(hidden), cfg_.resid_pdrop);
}

torch::Tensor GPT2::forward(const torch::Tensor& idx, ForwardOutput output, KVCache* cache) {
  TORCH_CHECK(idx.dim() == 2, "forward: expected ids of shape [B, T], got ", idx.sizes());
  const int64_t T = idx.size(1);
  const int64_t past = cache ? cache->length() : 0;
  TORCH_CHECK(past + T <= cfg_.n_positions, "forward: sequence of ", past + T,
              " tokens is longer than the model's n_positions=", cfg_.n_positions,
              "; truncate it (maxLength) or use a model with more positions");
  if (idx.numel() > 0) {
    int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < cfg_.vocab_size, "forward: token id ", lo < 0 ? lo : hi,
                " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
  }

  // embeddings: token + position, [B, T, C]
  torch::Tensor pos = torch::arange(past, past + T, idx.options());
  torch::Tensor x = wte->weight.index_select(0, idx.reshape(-1)).view({idx.size(0), T, -1}) +
                    wpe->weight.index_select(0, pos).unsqueeze(0);
  x = dropout(x, cfg_.embd_pdrop);

  // blocks: pre-norm residual attention and MLP
  for (size_t l = 0; l < h->size(); ++l) {
    auto& block = *h[l]->as<BlockImpl>();
    x = x + attention(*block.attn, block.ln_1->forward(x), cache, static_cast<int>(l));
    x = x + mlp(*block.mlp, block.ln_2->forward(x));
  }
  x = ln_f->forward(x);

  if (output == ForwardOutput::kHidden) return x;
  return torch::matmul(x, lm_head_weight().t());
}

}  // namespace dpo
