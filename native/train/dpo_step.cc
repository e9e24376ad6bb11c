// DPO step: model forward to hidden states, fused head, backward.
#include "train/dpo_step.h"

#include "kernel/reference.h"

namespace dpo {

torch::Tensor PairBatch::targets() const {
  const int64_t T = ids.size(1);
  return torch::cat({ids.narrow(1, 1, T - 1), torch::zeros({ids.size(0), 1}, ids.options())}, 1);
}

FusedHeadOutput dpo_step(GPT2& policy, const PairBatch& batch, const torch::Tensor& ref_logps,
                         const DpoLossConfig& cfg, const DpoStepOptions& opts) {
  TORCH_CHECK(batch.ids.dim() == 2 && batch.ids.size(0) % 2 == 0,
              "dpo_step: expected ids [2B, T] with chosen rows then rejected rows, got ",
              batch.ids.sizes());
  policy.train(opts.train);
  torch::Tensor targets = batch.targets();
  torch::Tensor weight = policy.lm_head_weight();
  auto head = [&](const torch::Tensor& h, const torch::Tensor& w, bool grad) {
    return opts.reference_head
               ? reference_dpo_head(h, w, targets, batch.mask, ref_logps, cfg, grad)
               : fused_dpo_head(h, w, targets, batch.mask, ref_logps, cfg, grad);
  };

  if (!opts.compute_grad) {
    torch::NoGradGuard no_grad;
    torch::Tensor hidden = policy.forward(batch.ids, ForwardOutput::kHidden);
    return head(hidden, weight, false);
  }

  // forward: hidden states keep the graph; the head below works on detached copies and hands
  // back dhidden [2B, T, C] and dweight [V, C].
  torch::Tensor hidden = policy.forward(batch.ids, ForwardOutput::kHidden);
  FusedHeadOutput out = head(hidden.detach(), weight.detach(), true);

  // backward: through the blocks by autograd, then the head's weight gradient into the (tied)
  // LM head weight, which the embedding's backward has already written to.
  hidden.backward(out.dhidden * opts.scale);
  torch::Tensor& grad = weight.mutable_grad();
  if (grad.defined()) grad.add_(out.dweight, opts.scale);
  else grad = out.dweight * opts.scale;
  return out;
}

torch::Tensor sequence_logps(GPT2& model, const PairBatch& batch) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  torch::Tensor hidden = model.forward(batch.ids, ForwardOutput::kHidden);
  torch::Tensor logps =
      fused_sequence_logps(hidden, model.lm_head_weight(), batch.targets(), batch.mask);
  if (was_training) model.train();
  return logps;
}

}  // namespace dpo
