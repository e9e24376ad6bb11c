// GPT-2 in libtorch: the Hugging Face architecture (pre-norm blocks, causal self-attention,
// tanh-GELU MLP, tied LM head) with parameter names equal to Hugging Face's checkpoint keys.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace dpo {

// The fields of a Hugging Face GPT-2 config.json that the model uses.
struct GPT2Config {
  int64_t n_layer = 12;         // L
  int64_t n_head = 12;          // NH
  int64_t n_embd = 768;         // C
  int64_t n_positions = 1024;   // longest sequence
  int64_t vocab_size = 50257;   // V
  double layer_norm_epsilon = 1e-5;
  double embd_pdrop = 0.1;
  double attn_pdrop = 0.1;
  double resid_pdrop = 0.1;
  double initializer_range = 0.02;
  bool tie_word_embeddings = true;

  // Throws std::invalid_argument naming the field when the config cannot describe a GPT-2, or
  // when its fp32 parameters would not fit in this machine's memory.
  void validate() const;

  // Parameters of the model this config describes (as a double: absurd configs overflow int64).
  double num_parameters() const;
};

// Per-layer keys and values of the positions seen so far: k[l], v[l] are [B, NH, Tpast, C/NH].
// Generation appends one position a step. The tensors keep their autograd history, so a prompt
// run once can serve several continuations and still receive their gradients.
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() ? 0 : k[0].size(2); }
};

// A Conv1D layer as in Hugging Face GPT-2: y = x W + b with W stored [in, out].
struct Conv1DImpl : torch::nn::Module {
  Conv1DImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [in, out], [out]
};
TORCH_MODULE(Conv1D);

struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t C, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [C], [C]
  double eps;
};
TORCH_MODULE(LayerNorm);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t n, int64_t C);
  torch::Tensor weight;  // [n, C]
};
TORCH_MODULE(Embedding);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const GPT2Config& cfg);
  Conv1D c_attn{nullptr}, c_proj{nullptr};
  int64_t n_head;
};
TORCH_MODULE(Attention);

struct MLPImpl : torch::nn::Module {
  explicit MLPImpl(const GPT2Config& cfg);
  Conv1D c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(MLP);

struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const GPT2Config& cfg);
  LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

// What forward returns: the last hidden states [B, T, C] after ln_f, or the logits [B, T, V].
enum class ForwardOutput { kHidden, kLogits };

class GPT2 : public torch::nn::Module {
 public:
  GPT2(const GPT2Config& cfg, uint64_t seed);

  const GPT2Config& config() const { return cfg_; }

  // idx: [B, T] int64 token ids, right-padded; position t of the batch is absolute position
  // cache->length() + t. With a cache, keys and values of these positions are appended to it.
  // Causal masking alone makes right padding harmless: a real position never attends to a
  // padded one, which always comes later.
  torch::Tensor forward(const torch::Tensor& idx, ForwardOutput output,
                        KVCache* cache = nullptr);

  // The LM head weight [V, C]: the token embedding when tied.
  torch::Tensor lm_head_weight() const;

  // GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit layer norms, and the residual
  // projections scaled by 1/sqrt(2 L) (Radford et al. 2019, section 2.3).
  void reset_parameters(uint64_t seed);

  // The random generator behind dropout; seeded, so a run repeats exactly.
  at::Generator& generator() { return gen_; }

  // Serialises native work on this model: one forward/backward/step at a time.
  std::mutex& mutex() { return mutex_; }

 private:
  torch::Tensor attention(AttentionImpl& attn, const torch::Tensor& x, KVCache* cache, int layer);
  torch::Tensor mlp(MLPImpl& m, const torch::Tensor& x);
  torch::Tensor dropout(const torch::Tensor& x, double p);

  GPT2Config cfg_;
  Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  LayerNorm ln_f{nullptr};
  Embedding lm_head{nullptr};  // [V, C], only when the head is not tied
  at::Generator gen_;
  std::mutex mutex_;
};

}  // namespace dpo
