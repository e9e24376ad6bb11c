// One DPO forward/backward on a batch of pairs: the policy's last hidden states go through the
// fused chunked head (the [tokens x V] logits never exist whole), and its dhidden/dweight flow
// back into the model by autograd. No global state: everything comes in as arguments.
#pragma once

#include <torch/types.h>

#include "kernel/fused_head.h"
#include "model/gpt2.h"

namespace dpo {

// ids: [2B, T] int64 right-padded rows, chosen rows first; mask: [2B, T], 1 where target t
// (the token at t + 1) is a completion token.
struct PairBatch {
  torch::Tensor ids;
  torch::Tensor mask;
  // Targets [2B, T]: ids shifted left by one, 0 at the last position (always masked).
  torch::Tensor targets() const;
};

struct DpoStepOptions {
  bool train = true;         // dropout on
  bool compute_grad = true;  // accumulate gradients into the policy's .grad
  double scale = 1.0;        // gradient scale: 1 / gradient-accumulation steps
  // The unfused head (full logits, log_softmax, gather, autograd: what TRL does) instead of the
  // fused one: the independent check of the step and the baseline of its benchmark.
  bool reference_head = false;
};

// ref_logps: [2B] summed reference log-probs (undefined when cfg.reference_free).
FusedHeadOutput dpo_step(GPT2& policy, const PairBatch& batch, const torch::Tensor& ref_logps,
                         const DpoLossConfig& cfg, const DpoStepOptions& opts);

// Summed completion log-probs per row [2B], eval mode, no gradients.
torch::Tensor sequence_logps(GPT2& model, const PairBatch& batch);

}  // namespace dpo
