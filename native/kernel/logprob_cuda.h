// Launchers of the fused kernel's CUDA passes: raw device pointers, no torch, no CUDA headers.
// Each returns nullptr on success or the CUDA error's message; nothing here aborts.
#pragma once

#include <stdint.h>

#include "kernel/dpo_loss_math.h"

namespace dpo {
namespace cuda {

enum class LogitsDType : int32_t { kFloat32, kBFloat16, kFloat16 };

// One block per token n: logp[n] = z[y] - logsumexp(z), lse[n], logit_sum[n] = sum z, with z
// the logits row rows[n] (rows null: row n) of `logits` (row_stride elements apart, V wide) and
// y = targets[n]. fp32 accumulation for every dtype. `stream` is a cudaStream_t.
const char* logprob_forward(const void* logits, LogitsDType dtype, int64_t row_stride, int64_t V,
                            const int64_t* rows, const int64_t* targets, int64_t N, float* logp,
                            float* lse, float* logit_sum, void* stream);

// dlogits[rows[n]] = coef[n] * (exp(z - lse[n]) - onehot(y)), in the logits' dtype; dlogits may
// be logits (in place). Blocks cover (token, 1024-wide slice of the vocabulary).
const char* logprob_backward(const void* logits, void* dlogits, LogitsDType dtype,
                             int64_t row_stride, int64_t out_stride, int64_t V,
                             const int64_t* rows, const int64_t* targets, int64_t N,
                             const float* lse, const float* coef, void* stream);

// One thread per pair, the math of dpo_loss_math.h on the device: row_logps, ref_logps and
// row_tokens [2B] in; losses [B] (the pair loss l), rewards [2B] and row_coef [2B] out.
const char* pair_terms(const double* row_logps, const double* ref_logps, const double* row_tokens,
                       int64_t B, DpoLossConfig cfg, double valid_pairs, double all_chosen_tokens,
                       double bco_delta, double* losses, double* rewards, double* row_coef,
                       void* stream);

}  // namespace cuda
}  // namespace dpo
