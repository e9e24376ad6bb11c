// The fused kernel's per-token passes on the CPU: an online logsumexp over each logits row in
// one read (blocks that stay in L1, max-rescaled), and the in-place gradient
// c * (softmax - onehot). Threads split the tokens (at::parallel_for); within a row, GCC vector
// extensions with an AVX2 clone picked at load time on x86 (target_clones).
#include <ATen/Parallel.h>

// The 32-byte vector types only live inside always-inline helpers: no ABI crosses a call.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <cstring>
#include <limits>

#include "kernel/logprob.h"

namespace dpo {

namespace {

// Elements of a row processed at once: 8 KB of floats, resident in L1 for the second touch.
constexpr int64_t kBlock = 2048;

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define DPO_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DPO_VECTOR_CLONES
#endif
#define DPO_INLINE inline __attribute__((always_inline))

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

DPO_INLINE f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

DPO_INLINE void store8(float* p, f32x8 v) { std::memcpy(p, &v, sizeof v); }

DPO_INLINE f32x8 splat8(float x) { return f32x8{x, x, x, x, x, x, x, x}; }

// exp(x) for x <= ~0, about 1 ulp: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two for an
// exact k ln2), exp(r) by its degree-7 Taylor polynomial, 2^k put into the exponent bits.
// Below -87 the result is 0 (also for -inf: masked vocabulary entries); fp32 denormals are lost.
DPO_INLINE f32x8 exp8(f32x8 x) {
  const i32x8 under = x < splat8(-87.0f);
  x = under ? splat8(-87.0f) : x;
  x = x > splat8(88.0f) ? splat8(88.0f) : x;
  const f32x8 magic = splat8(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  f32x8 kf = (x * 1.44269504088896341f + magic) - magic;
  f32x8 r = x - kf * 0.693145751953125f;
  r = r - kf * 1.428606765330187e-06f;
  f32x8 p = splat8(1.0f / 5040);
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  i32x8 k = __builtin_convertvector(kf, i32x8);
  f32x8 scale = (f32x8)((k + 127) << 23);
  f32x8 y = p * scale;
  return (f32x8)((i32x8)y & ~under);
}

// Over z[0, n): the max m, sum of exp(z - m) and sum of z. All -inf gives m = -inf, s = 0.
DPO_VECTOR_CLONES void block_stats(const float* z, int64_t n, float* m_out, float* s_out,
                                   float* sum_out) {
  const float kNegInf = -std::numeric_limits<float>::infinity();
  f32x8 vmax = splat8(kNegInf), vsum = splat8(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 v = load8(z + i);
    vmax = v > vmax ? v : vmax;
    vsum += v;
  }
  float m = kNegInf, sum = 0;
  for (int j = 0; j < 8; ++j) {
    m = vmax[j] > m ? vmax[j] : m;
    sum += vsum[j];
  }
  for (int64_t t = i; t < n; ++t) {
    m = z[t] > m ? z[t] : m;
    sum += z[t];
  }
  *sum_out = sum;
  *m_out = m;
  if (m == kNegInf) {
    *s_out = 0;
    return;
  }

  f32x8 vs = splat8(0.0f);
  for (i = 0; i + 8 <= n; i += 8) vs += exp8(load8(z + i) - m);
  float s = 0;
  for (int j = 0; j < 8; ++j) s += vs[j];
  for (int64_t t = i; t < n; ++t) s += std::exp(z[t] - m);
  *s_out = s;
}

// out[i] = c * exp(z[i] - lse) over [0, n); out may be z.
DPO_VECTOR_CLONES void block_softmax_scaled(const float* z, int64_t n, float lse, float c,
                                            float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, exp8(load8(z + i) - lse) * c);
  for (; i < n; ++i) out[i] = c * std::exp(z[i] - lse);
}

// A row of V logits as float blocks: float rows are read in place, reduced-precision rows are
// widened into `buf` a block at a time (fp32 accumulation whatever the input dtype).
template <typename scalar_t>
DPO_INLINE const float* block_as_float(const scalar_t* src, int64_t n, float* buf) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    return src;
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(src[i]);
    return buf;
  }
}

int64_t grain_for(int64_t V) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(V, 1)); }

template <typename scalar_t>
void logprobs_impl(const torch::Tensor& logits, const int64_t* rows, const int64_t* targets,
                   int64_t N, float* logp, float* lse, float* logit_sum) {
  const int64_t V = logits.size(1);
  const int64_t stride = logits.stride(0);
  const scalar_t* base = logits.data_ptr<scalar_t>();
  at::parallel_for(0, N, grain_for(V), [&](int64_t begin, int64_t end) {
    float buf[kBlock];
    for (int64_t n = begin; n < end; ++n) {
      const scalar_t* row = base + (rows ? rows[n] : n) * stride;
      float m = -std::numeric_limits<float>::infinity(), s = 0, sum = 0;
      for (int64_t v0 = 0; v0 < V; v0 += kBlock) {
        int64_t len = std::min(kBlock, V - v0);
        float bm, bs, bsum;
        block_stats(block_as_float(row + v0, len, buf), len, &bm, &bs, &bsum);
        lse_combine(m, s, bm, bs);
        sum += bsum;
      }
      float l = m + std::log(s);  // all -inf: -inf + log 0 = -inf
      lse[n] = l;
      logp[n] = static_cast<float>(row[targets[n]]) - l;
      logit_sum[n] = sum;
    }
  });
}

template <typename scalar_t>
void dlogits_impl(const torch::Tensor& logits, const int64_t* rows, const int64_t* targets,
                  int64_t N, const float* lse, const float* coef, torch::Tensor& dlogits) {
  const int64_t V = logits.size(1);
  const int64_t stride = logits.stride(0), out_stride = dlogits.stride(0);
  const scalar_t* base = logits.data_ptr<scalar_t>();
  scalar_t* out_base = dlogits.data_ptr<scalar_t>();
  at::parallel_for(0, N, grain_for(V), [&](int64_t begin, int64_t end) {
    float buf[kBlock];
    for (int64_t n = begin; n < end; ++n) {
      int64_t r = rows ? rows[n] : n;
      const scalar_t* row = base + r * stride;
      scalar_t* out = out_base + r * out_stride;
      const float c = coef[n];
      const int64_t y = targets[n];
      for (int64_t v0 = 0; v0 < V; v0 += kBlock) {
        int64_t len = std::min(kBlock, V - v0);
        const float* z = block_as_float(row + v0, len, buf);
        if constexpr (std::is_same_v<scalar_t, float>) {
          // In place when out == row: each element is read before it is written.
          block_softmax_scaled(z, len, lse[n], c, out + v0);
          if (y >= v0 && y < v0 + len) out[y] -= c;
        } else {
          block_softmax_scaled(z, len, lse[n], c, buf);
          if (y >= v0 && y < v0 + len) buf[y - v0] -= c;
          for (int64_t i = 0; i < len; ++i) out[v0 + i] = static_cast<scalar_t>(buf[i]);
        }
      }
    }
  });
}

void check_token_args(const torch::Tensor& logits, const torch::Tensor& rows,
                      const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && logits.stride(1) == 1,
              "fused kernel: expected logits [M, V] with contiguous rows, got shape ",
              logits.sizes());
  TORCH_CHECK(targets.scalar_type() == torch::kInt64 && targets.is_contiguous(),
              "fused kernel: targets must be contiguous int64");
  TORCH_CHECK(!rows.defined() || (rows.scalar_type() == torch::kInt64 && rows.is_contiguous() &&
                                  rows.numel() == targets.numel()),
              "fused kernel: rows must be contiguous int64 with one entry per target");
  TORCH_CHECK(rows.defined() || logits.size(0) == targets.numel(),
              "fused kernel: ", targets.numel(), " targets for ", logits.size(0), " logits rows");
}

}  // namespace

#define DPO_DISPATCH_LOGITS(dtype, fn, ...)                                                   \
  switch (dtype) {                                                                           \
    case torch::kFloat32: fn<float>(__VA_ARGS__); break;                                     \
    case torch::kBFloat16: fn<c10::BFloat16>(__VA_ARGS__); break;                            \
    case torch::kFloat16: fn<c10::Half>(__VA_ARGS__); break;                                 \
    default:                                                                                 \
      TORCH_CHECK(false, "fused kernel: logits must be float32, bfloat16 or float16, got ",  \
                  dtype);                                                                    \
  }

void token_logprobs_cpu(const torch::Tensor& logits, const torch::Tensor& rows,
                        const torch::Tensor& targets, torch::Tensor& logp, torch::Tensor& lse,
                        torch::Tensor& logit_sum) {
  check_token_args(logits, rows, targets);
  const int64_t N = targets.numel();
  auto f32 = targets.options().dtype(torch::kFloat32);
  logp = torch::empty({N}, f32);
  lse = torch::empty({N}, f32);
  logit_sum = torch::empty({N}, f32);
  const int64_t* r = rows.defined() ? rows.data_ptr<int64_t>() : nullptr;
  DPO_DISPATCH_LOGITS(logits.scalar_type(), logprobs_impl, logits, r, targets.data_ptr<int64_t>(),
                      N, logp.data_ptr<float>(), lse.data_ptr<float>(),
                      logit_sum.data_ptr<float>());
}

void token_dlogits_cpu(const torch::Tensor& logits, const torch::Tensor& rows,
                       const torch::Tensor& targets, const torch::Tensor& lse,
                       const torch::Tensor& coef, torch::Tensor& dlogits) {
  check_token_args(logits, rows, targets);
  TORCH_CHECK(dlogits.sizes() == logits.sizes() && dlogits.stride(1) == 1 &&
                  dlogits.scalar_type() == logits.scalar_type(),
              "fused kernel: dlogits must match logits");
  TORCH_CHECK(lse.scalar_type() == torch::kFloat32 && coef.scalar_type() == torch::kFloat32 &&
                  lse.is_contiguous() && coef.is_contiguous(),
              "fused kernel: lse and coef must be contiguous float32");
  const int64_t* r = rows.defined() ? rows.data_ptr<int64_t>() : nullptr;
  DPO_DISPATCH_LOGITS(logits.scalar_type(), dlogits_impl, logits, r, targets.data_ptr<int64_t>(),
                      targets.numel(), lse.data_ptr<float>(), coef.data_ptr<float>(), dlogits);
}

}  // namespace dpo
