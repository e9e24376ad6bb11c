// The unfused DPO head in plain libtorch with autograd: the independent reference the fused
// kernel is tested against and the baseline the benchmark measures it against.
#pragma once

#include "kernel/fused_head.h"

namespace dpo {

// Same inputs and outputs as fused_dpo_head, computed as TRL does: logits [2B, T, V] for every
// position, log_softmax, gather, the loss formula, backward.
FusedHeadOutput reference_dpo_head(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& targets, const torch::Tensor& mask,
                                   const torch::Tensor& ref_logps, const DpoLossConfig& cfg,
                                   bool compute_grad);

// Same as fused_dpo_loss, from full logits [2B, T, V].
FusedHeadOutput reference_dpo_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask, const torch::Tensor& ref_logps,
                                   const DpoLossConfig& cfg, bool compute_grad);

// Summed log-probs per row [R].
torch::Tensor reference_sequence_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                       const torch::Tensor& targets, const torch::Tensor& mask);

}  // namespace dpo
