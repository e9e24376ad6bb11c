// The fused kernel's CUDA passes: an online logsumexp with one block per token (per-thread
// running max and sum, merged by warp shuffles, then across warps in shared memory), the
// gradient c * (softmax - onehot) over (token, vocabulary slice) blocks, and the per-pair loss
// math of dpo_loss_math.h. fp32 accumulation for fp32, bf16 and fp16 logits.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernel/logprob_cuda.h"

namespace dpo {
namespace cuda {

namespace {

constexpr int kThreads = 256;            // 8 warps per block
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = 4;            // backward: elements per thread
constexpr int kSlice = kThreads * kPerThread;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half(x); }

// blockDim.x == kThreads. Each thread folds its elements into (m, s, sum); the 32 lanes of a warp
// merge with xor shuffles; warp 0 merges the 8 warp results.
template <typename T>
__global__ void logprob_forward_kernel(const T* __restrict__ logits, int64_t row_stride, int64_t V,
                                       const int64_t* __restrict__ rows,
                                       const int64_t* __restrict__ targets, float* logp,
                                       float* lse, float* logit_sum) {
  const int64_t n = blockIdx.x;
  const T* z = logits + (rows ? rows[n] : n) * row_stride;

  float m = -INFINITY, s = 0.f, sum = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += kThreads) {
    float x = to_float(z[v]);
    sum += x;
    lse_combine(m, s, x, 1.f);
  }

  // Warp, then block.
  for (int offset = 16; offset > 0; offset >>= 1) {
    float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
    float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    lse_combine(m, s, m2, s2);
  }
  __shared__ float sm[kWarps], ss[kWarps], ssum[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
    ssum[warp] = sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      lse_combine(m, s, sm[w], ss[w]);
      sum += ssum[w];
    }
    float l = m + logf(s);
    lse[n] = l;
    logp[n] = to_float(z[targets[n]]) - l;
    logit_sum[n] = sum;
  }
}

// blockIdx.x: token; blockIdx.y: vocabulary slice of kSlice. In place when dlogits == logits:
// every element is read before it is written, by the same thread.
template <typename T>
__global__ void logprob_backward_kernel(const T* logits, T* dlogits, int64_t row_stride,
                                        int64_t out_stride, int64_t V,
                                        const int64_t* __restrict__ rows,
                                        const int64_t* __restrict__ targets,
                                        const float* __restrict__ lse,
                                        const float* __restrict__ coef) {
  const int64_t n = blockIdx.x;
  const int64_t r = rows ? rows[n] : n;
  const T* z = logits + r * row_stride;
  T* out = dlogits + r * out_stride;
  const float c = coef[n], l = lse[n];
  const int64_t y = targets[n];
  const int64_t base = static_cast<int64_t>(blockIdx.y) * kSlice + threadIdx.x;
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    int64_t v = base + k * kThreads;
    if (v < V) {
      float g = c * (expf(to_float(z[v]) - l) - (v == y ? 1.f : 0.f));
      out[v] = from_float<T>(g);
    }
  }
}

__global__ void pair_terms_kernel(const double* row_logps, const double* ref_logps,
                                  const double* row_tokens, int64_t B, DpoLossConfig cfg,
                                  double valid_pairs, double all_chosen_tokens, double bco_delta,
                                  double* losses, double* rewards, double* row_coef) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B) return;
  PairInputs p = {row_logps[i], row_logps[B + i], ref_logps[i], ref_logps[B + i],
                  row_tokens[i], row_tokens[B + i]};
  PairTerms t = dpo_pair_terms(p, cfg, bco_delta);
  double cc, cr;
  pair_row_coefficients(t, valid_pairs, all_chosen_tokens, cfg, cc, cr);
  losses[i] = t.valid ? t.loss : 0.0;
  rewards[i] = t.chosen_reward;
  rewards[B + i] = t.rejected_reward;
  row_coef[i] = cc;
  row_coef[B + i] = cr;
}

const char* launch_status() {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

// One launch per dtype: the kernels are templates on the logits' element type T.
template <typename T>
void launch_forward(dim3 grid, cudaStream_t st, const void* logits, int64_t row_stride, int64_t V,
                    const int64_t* rows, const int64_t* targets, float* logp, float* lse,
                    float* logit_sum) {
  logprob_forward_kernel<<<grid, kThreads, 0, st>>>(static_cast<const T*>(logits), row_stride, V,
                                                    rows, targets, logp, lse, logit_sum);
}

template <typename T>
void launch_backward(dim3 grid, cudaStream_t st, const void* logits, void* dlogits,
                     int64_t row_stride, int64_t out_stride, int64_t V, const int64_t* rows,
                     const int64_t* targets, const float* lse, const float* coef) {
  logprob_backward_kernel<<<grid, kThreads, 0, st>>>(static_cast<const T*>(logits),
                                                     static_cast<T*>(dlogits), row_stride,
                                                     out_stride, V, rows, targets, lse, coef);
}

const char* logprob_forward(const void* logits, LogitsDType dtype, int64_t row_stride, int64_t V,
                            const int64_t* rows, const int64_t* targets, int64_t N, float* logp,
                            float* lse, float* logit_sum, void* stream) {
  if (N == 0) return nullptr;
  if (N > 0x7fffffffLL) return "too many tokens for one launch (more than 2^31 - 1)";
  auto st = static_cast<cudaStream_t>(stream);
  dim3 grid(static_cast<unsigned>(N));
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    launch_forward<T>(grid, st, logits, row_stride, V, rows, targets, logp, lse, logit_sum);
  };
  switch (dtype) {
    case LogitsDType::kFloat32: launch(float{}); break;
    case LogitsDType::kBFloat16: launch(__nv_bfloat16{}); break;
    case LogitsDType::kFloat16: launch(__half{}); break;
  }
  return launch_status();
}

const char* logprob_backward(const void* logits, void* dlogits, LogitsDType dtype,
                             int64_t row_stride, int64_t out_stride, int64_t V,
                             const int64_t* rows, const int64_t* targets, int64_t N,
                             const float* lse, const float* coef, void* stream) {
  if (N == 0 || V == 0) return nullptr;
  if (N > 0x7fffffffLL) return "too many tokens for one launch (more than 2^31 - 1)";
  int64_t slices = (V + kSlice - 1) / kSlice;
  if (slices > 65535) return "vocabulary too large for one launch (more than 65535 * 1024)";
  auto st = static_cast<cudaStream_t>(stream);
  dim3 grid(static_cast<unsigned>(N), static_cast<unsigned>(slices));
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    launch_backward<T>(grid, st, logits, dlogits, row_stride, out_stride, V, rows, targets, lse,
                       coef);
  };
  switch (dtype) {
    case LogitsDType::kFloat32: launch(float{}); break;
    case LogitsDType::kBFloat16: launch(__nv_bfloat16{}); break;
    case LogitsDType::kFloat16: launch(__half{}); break;
  }
  return launch_status();
}

const char* pair_terms(const double* row_logps, const double* ref_logps, const double* row_tokens,
                       int64_t B, DpoLossConfig cfg, double valid_pairs, double all_chosen_tokens,
                       double bco_delta, double* losses, double* rewards, double* row_coef,
                       void* stream) {
  if (B == 0) return nullptr;
  const int threads = 128;
  unsigned blocks = static_cast<unsigned>((B + threads - 1) / threads);
  pair_terms_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(
      row_logps, ref_logps, row_tokens, B, cfg, valid_pairs, all_chosen_tokens, bco_delta, losses,
      rewards, row_coef);
  return launch_status();
}

}  // namespace cuda
}  // namespace dpo
