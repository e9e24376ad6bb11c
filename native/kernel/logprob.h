// The per-token passes of the fused kernel, on torch tensors: the log-prob of each target token
// (online logsumexp) and the in-place gradient c * (softmax - onehot). CPU here; CUDA versions
// when the addon is built against a CUDA libtorch (DPO_WITH_CUDA).
#pragma once

#include <torch/types.h>

#include "kernel/dpo_loss_math.h"

namespace dpo {

// logits [M, V] with contiguous rows (float32, bfloat16 or float16); rows [N] int64: the logits
// row of token n (undefined: token n reads row n); targets [N] int64 in [0, V).
// Writes logp [N] = z[y] - logsumexp(z), lse [N] and logit_sum [N] = sum_v z (float32).
void token_logprobs_cpu(const torch::Tensor& logits, const torch::Tensor& rows,
                        const torch::Tensor& targets, torch::Tensor& logp, torch::Tensor& lse,
                        torch::Tensor& logit_sum);

// Writes dlogits[rows[n]] = coef[n] * (exp(z - lse[n]) - onehot(targets[n])) for each token n,
// from logits[rows[n]]; dlogits may be logits itself (in place). coef [N] float32.
void token_dlogits_cpu(const torch::Tensor& logits, const torch::Tensor& rows,
                       const torch::Tensor& targets, const torch::Tensor& lse,
                       const torch::Tensor& coef, torch::Tensor& dlogits);

#ifdef DPO_WITH_CUDA
// The same on CUDA tensors, on the current stream (native/kernel/fused_head_cuda.cc).
void token_logprobs_cuda(const torch::Tensor& logits, const torch::Tensor& rows,
                         const torch::Tensor& targets, torch::Tensor& logp, torch::Tensor& lse,
                         torch::Tensor& logit_sum);
void token_dlogits_cuda(const torch::Tensor& logits, const torch::Tensor& rows,
                        const torch::Tensor& targets, const torch::Tensor& lse,
                        const torch::Tensor& coef, torch::Tensor& dlogits);
// Free memory on a CUDA device (cudaMemGetInfo), for the automatic chunk size.
int64_t cuda_free_bytes(const torch::Device& device);
#endif

}  // namespace dpo
