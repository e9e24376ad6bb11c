// The fused DPO head: per-token log-probs, per-sequence sums, the DPO loss family and its
// gradient in one pass over chunks of completion-token logits, never the whole batch's logits.
// Rows are 2B with the chosen block first: rows 0..B-1 chosen, rows B..2B-1 rejected.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "kernel/dpo_loss_math.h"

namespace dpo {

// TRL's name of a loss type ("sigmoid", "hinge", ...) and back; throws std::invalid_argument
// listing the valid names.
LossType loss_type_from_string(const std::string& name);
const char* loss_type_name(LossType type);
std::vector<std::string> loss_type_names();

// Throws std::invalid_argument when a parameter is out of its loss's range (beta <= 0, ...).
void validate_loss_config(const DpoLossConfig& cfg);

struct FusedHeadOutput {
  torch::Tensor chosen_logps, rejected_logps;      // [B] summed log-probs (policy), float32
  torch::Tensor chosen_rewards, rejected_rewards;  // [B] beta * (score - ref score)
  torch::Tensor losses;                            // [B] per pair (+ rpo term); 0 for empty pairs
  torch::Tensor loss;                              // scalar: mean over non-empty pairs (+ rpo)
  // Sum of the logits over completion tokens and the vocabulary, and the completion token
  // counts: TRL's logits/chosen is chosen_logits_sum.sum() / (chosen_tokens.sum() * V).
  torch::Tensor chosen_logits_sum, rejected_logits_sum, chosen_tokens, rejected_tokens;  // [B]
  torch::Tensor dhidden;  // [2B, T, C] (undefined without grad, or in the logits form)
  torch::Tensor dweight;  // [V, C]
  torch::Tensor dlogits;  // [2B, T, V] (the logits form only)
  // bco_pair: the running mean after this batch (cfg's mean and count otherwise), to feed back.
  double bco_running_mean = 0, bco_running_count = 0;
};

// hidden [2B, T, C], weight [V, C] (same dtype: float32, or bfloat16/float16 on CUDA),
// targets [2B, T] int64 (target t is the token at t + 1), mask [2B, T] (nonzero = completion
// target), ref_logps [2B] summed reference log-probs (ignored when reference_free).
// max_chunk_bytes bounds one chunk's logits; 0 picks it from free memory.
FusedHeadOutput fused_dpo_head(const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, const torch::Tensor& mask,
                               const torch::Tensor& ref_logps, const DpoLossConfig& cfg,
                               bool compute_grad, int64_t max_chunk_bytes = 0);

// The per-row summed log-probs [R] (reference model, eval, scoring) through the same chunks,
// without gradients. For an even R the chunks are those of fused_dpo_head, so the same inputs
// give bit-identical sums (step 0: rewards exactly 0).
torch::Tensor fused_sequence_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& targets, const torch::Tensor& mask,
                                   int64_t max_chunk_bytes = 0);

// The same loss from full logits [2B, T, V] (float32, bfloat16, float16), with dlogits
// [2B, T, V] in the logits' dtype (zero at prompt and padding positions).
FusedHeadOutput fused_dpo_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                               const torch::Tensor& mask, const torch::Tensor& ref_logps,
                               const DpoLossConfig& cfg, bool compute_grad);

// The chunk budget picked when max_chunk_bytes is 0: a share of the free memory of `device`.
int64_t fused_head_auto_chunk_bytes(const torch::Device& device);

}  // namespace dpo
