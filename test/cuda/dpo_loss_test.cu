// Standalone check of the fused kernel's CUDA passes (no Node, no torch): random logits of odd
// shapes in fp32, bf16 and fp16, some entries -inf, against a double-precision CPU reference;
// and the per-pair loss math on the device against the same header run on the host, for every
// loss type. Prints the worst errors; exits 1 when one is over its tolerance, 77 without a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernel/dpo_loss_math.h"
#include "kernel/logprob_cuda.h"

using dpo::cuda::LogitsDType;

#define CHECK_CUDA(call)                                                              \
  do {                                                                                \
    cudaError_t err_ = (call);                                                        \
    if (err_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_)); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

#define CHECK_LAUNCH(msg)                                                  \
  do {                                                                     \
    const char* m_ = (msg);                                                \
    if (m_) {                                                              \
      std::fprintf(stderr, "%s:%d: launch failed: %s\n", __FILE__, __LINE__, m_); \
      std::exit(1);                                                        \
    }                                                                      \
  } while (0)

static int failures = 0;

static void report(const char* what, double err, double tol) {
  bool ok = err <= tol;
  if (!ok) ++failures;
  std::printf("  %-44s worst %.3e  (tolerance %.0e)%s\n", what, err, tol, ok ? "" : "  FAIL");
}

// Host values rounded through the device dtype, so both sides see the same inputs.
static float round_to(float x, LogitsDType dt) {
  if (dt == LogitsDType::kBFloat16) return __bfloat162float(__float2bfloat16(x));
  if (dt == LogitsDType::kFloat16) return __half2float(__float2half(x));
  return x;
}

static std::vector<unsigned char> encode(const std::vector<float>& z, LogitsDType dt) {
  size_t es = dt == LogitsDType::kFloat32 ? 4 : 2;
  std::vector<unsigned char> out(z.size() * es);
  for (size_t i = 0; i < z.size(); ++i) {
    if (dt == LogitsDType::kFloat32) {
      std::memcpy(&out[i * 4], &z[i], 4);
    } else if (dt == LogitsDType::kBFloat16) {
      __nv_bfloat16 b = __float2bfloat16(z[i]);
      std::memcpy(&out[i * 2], &b, 2);
    } else {
      __half h = __float2half(z[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

static float decode(const unsigned char* p, LogitsDType dt) {
  if (dt == LogitsDType::kFloat32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  if (dt == LogitsDType::kBFloat16) {
    __nv_bfloat16 b;
    std::memcpy(&b, p, 2);
    return __bfloat162float(b);
  }
  __half h;
  std::memcpy(&h, p, 2);
  return __half2float(h);
}

// N tokens over M = N + 2 logits rows (tokens read rows in a shuffled order), V wide.
static void check_tokens(int64_t N, int64_t V, LogitsDType dt, std::mt19937& gen) {
  const char* names[] = {"fp32", "bf16", "fp16"};
  const int64_t M = N + 2;
  const size_t es = dt == LogitsDType::kFloat32 ? 4 : 2;
  std::normal_distribution<float> normal(0.f, 3.f);
  std::uniform_int_distribution<int64_t> pick(0, V - 1);
  std::vector<float> z(M * V);
  std::vector<int64_t> targets(N), rows(N);
  for (auto& x : z) x = round_to(normal(gen), dt);
  for (int64_t n = 0; n < N; ++n) {
    targets[n] = pick(gen);
    rows[n] = (n * 7 + 1) % M;
  }
  for (int64_t n = 0; n < N; ++n)  // a masked vocabulary: every 5th logit -inf, never the target
    for (int64_t v = n % 5; v < V; v += 5)
      if (v != targets[n]) z[rows[n] * V + v] = -INFINITY;
  std::vector<float> coef(N);
  for (auto& c : coef) c = normal(gen) * 0.1f;

  // Device.
  std::vector<unsigned char> bytes = encode(z, dt);
  void *d_z, *d_dz;
  int64_t *d_t, *d_r;
  float *d_logp, *d_lse, *d_sum, *d_coef;
  CHECK_CUDA(cudaMalloc(&d_z, bytes.size()));
  CHECK_CUDA(cudaMalloc(&d_dz, bytes.size()));
  CHECK_CUDA(cudaMalloc(&d_t, N * 8));
  CHECK_CUDA(cudaMalloc(&d_r, N * 8));
  CHECK_CUDA(cudaMalloc(&d_logp, N * 4));
  CHECK_CUDA(cudaMalloc(&d_lse, N * 4));
  CHECK_CUDA(cudaMalloc(&d_sum, N * 4));
  CHECK_CUDA(cudaMalloc(&d_coef, N * 4));
  CHECK_CUDA(cudaMemcpy(d_z, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemset(d_dz, 0, bytes.size()));
  CHECK_CUDA(cudaMemcpy(d_t, targets.data(), N * 8, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_r, rows.data(), N * 8, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_coef, coef.data(), N * 4, cudaMemcpyHostToDevice));
  CHECK_LAUNCH(dpo::cuda::logprob_forward(d_z, dt, V, V, d_r, d_t, N, d_logp, d_lse, d_sum, nullptr));
  CHECK_LAUNCH(dpo::cuda::logprob_backward(d_z, d_dz, dt, V, V, V, d_r, d_t, N, d_lse, d_coef, nullptr));
  // In place as well, on a copy.
  void* d_inplace;
  CHECK_CUDA(cudaMalloc(&d_inplace, bytes.size()));
  CHECK_CUDA(cudaMemcpy(d_inplace, d_z, bytes.size(), cudaMemcpyDeviceToDevice));
  CHECK_LAUNCH(dpo::cuda::logprob_backward(d_inplace, d_inplace, dt, V, V, V, d_r, d_t, N, d_lse, d_coef, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> logp(N), lse(N), sum(N);
  std::vector<unsigned char> dz(bytes.size()), dz_inplace(bytes.size());
  CHECK_CUDA(cudaMemcpy(logp.data(), d_logp, N * 4, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(lse.data(), d_lse, N * 4, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(sum.data(), d_sum, N * 4, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(dz.data(), d_dz, bytes.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(dz_inplace.data(), d_inplace, bytes.size(), cudaMemcpyDeviceToHost));

  // CPU reference in double: two-pass logsumexp, softmax, onehot.
  double e_logp = 0, e_grad = 0, e_inplace = 0, grad_scale = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* row = &z[rows[n] * V];
    double m = -INFINITY, s = 0, sm = 0;
    for (int64_t v = 0; v < V; ++v) m = std::fmax(m, row[v]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - m);
    double l = m + std::log(s);
    const double want = row[targets[n]] - l;
    e_logp = std::fmax(e_logp, std::fabs(want - logp[n]) / std::fmax(1.0, std::fabs(want)));
    for (int64_t v = 0; v < V; ++v)
      if (std::isfinite(row[v])) sm += row[v];
      else sm = -INFINITY;
    (void)sm;
    for (int64_t v = 0; v < V; ++v) {
      double g = coef[n] * (std::exp(row[v] - l) - (v == targets[n] ? 1.0 : 0.0));
      size_t at = (rows[n] * V + v) * es;
      grad_scale = std::fmax(grad_scale, std::fabs(g));
      e_grad = std::fmax(e_grad, std::fabs(g - decode(&dz[at], dt)));
      e_inplace = std::fmax(e_inplace, std::fabs(decode(&dz[at], dt) - decode(&dz_inplace[at], dt)));
    }
  }
  // Rows no token reads stay zero.
  double e_untouched = 0;
  for (int64_t r = 0; r < M; ++r) {
    bool read = false;
    for (int64_t n = 0; n < N; ++n) read |= rows[n] == r;
    if (!read)
      for (int64_t v = 0; v < V; ++v)
        e_untouched = std::fmax(e_untouched, std::fabs(decode(&dz[(r * V + v) * es], dt)));
  }
  // Output rounding: fp32 ~1e-6 of the scale, bf16 2^-8, fp16 2^-11.
  double grad_tol = dt == LogitsDType::kFloat32 ? 1e-5 : dt == LogitsDType::kBFloat16 ? 8e-3 : 1e-3;
  char what[128];
  std::printf("N=%lld V=%lld %s\n", (long long)N, (long long)V, names[static_cast<int>(dt)]);
  std::snprintf(what, sizeof what, "logp (relative, fp32 accumulation)");
  report(what, e_logp, 1e-5);
  report("dlogits (relative to max |dlogits|)", grad_scale > 0 ? e_grad / grad_scale : e_grad, grad_tol);
  report("dlogits in place vs out of place", e_inplace, 0);
  report("rows no token reads stay zero", e_untouched, 0);

  cudaFree(d_z); cudaFree(d_dz); cudaFree(d_inplace); cudaFree(d_t); cudaFree(d_r);
  cudaFree(d_logp); cudaFree(d_lse); cudaFree(d_sum); cudaFree(d_coef);
}

// The pair math on the device against the host for every loss type.
static void check_pairs(std::mt19937& gen) {
  const int64_t B = 37;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> S(2 * B), ref(2 * B), tokens(2 * B);
  for (int64_t r = 0; r < 2 * B; ++r) {
    tokens[r] = r == 5 ? 0 : 1 + (r * 13) % 29;  // row 5: an empty completion
    S[r] = -2.0 * tokens[r] + normal(gen);
    ref[r] = S[r] + 3 * normal(gen);
  }
  double* d;
  CHECK_CUDA(cudaMalloc(&d, sizeof(double) * 2 * B * 6));
  // Six [2B] arrays in one allocation: row logps, ref logps, tokens, losses, rewards, coefs.
  double *d_S = d, *d_ref = d + 2 * B, *d_tok = d + 4 * B;
  double *d_loss = d + 6 * B, *d_rew = d + 8 * B, *d_coef = d + 10 * B;
  CHECK_CUDA(cudaMemcpy(d_S, S.data(), 2 * B * 8, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_ref, ref.data(), 2 * B * 8, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_tok, tokens.data(), 2 * B * 8, cudaMemcpyHostToDevice));
  double worst = 0;
  for (int lt = 0; lt < dpo::kNumLossTypes; ++lt) {
    for (int variant = 0; variant < 2; ++variant) {
      dpo::DpoLossConfig cfg;
      cfg.loss_type = static_cast<dpo::LossType>(lt);
      cfg.beta = variant ? 0.5 : 0.1;
      cfg.label_smoothing = variant ? 0.1 : 0.0;
      cfg.rpo_alpha = variant ? 0.3 : 0.0;
      cfg.reference_free = variant && lt == 0;
      cfg.simpo_gamma = cfg.reference_free ? 0.4 : 0.0;
      const double valid = B - 1, chosen_tokens = 500, bco_delta = 0.2;
      CHECK_LAUNCH(dpo::cuda::pair_terms(d_S, d_ref, d_tok, B, cfg, valid, chosen_tokens, bco_delta,
                                         d_loss, d_rew, d_coef, nullptr));
      std::vector<double> loss(B), rew(2 * B), coef(2 * B);
      CHECK_CUDA(cudaMemcpy(loss.data(), d_loss, B * 8, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(rew.data(), d_rew, 2 * B * 8, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(coef.data(), d_coef, 2 * B * 8, cudaMemcpyDeviceToHost));
      for (int64_t i = 0; i < B; ++i) {
        dpo::PairInputs p = {S[i], S[B + i], ref[i], ref[B + i], tokens[i], tokens[B + i]};
        dpo::PairTerms t = dpo::dpo_pair_terms(p, cfg, bco_delta);
        double cc, cr;
        dpo::pair_row_coefficients(t, valid, chosen_tokens, cfg, cc, cr);
        auto rel = [](double a, double b) { return std::fabs(a - b) / std::fmax(1e-12, std::fabs(b)); };
        worst = std::fmax(worst, rel(loss[i], t.valid ? t.loss : 0.0));
        worst = std::fmax(worst, rel(coef[i], cc));
        worst = std::fmax(worst, rel(coef[B + i], cr));
        worst = std::fmax(worst, rel(rew[i], t.chosen_reward));
        if (!std::isfinite(loss[i]) || !std::isfinite(coef[i])) worst = INFINITY;
      }
    }
  }
  cudaFree(d);
  std::printf("pair terms, %d loss types x 2 settings, B=%lld\n", dpo::kNumLossTypes, (long long)B);
  report("device vs host (relative, float64)", worst, 1e-12);
}

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device: nothing tested\n");
    return 77;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  std::mt19937 gen(1234);
  const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 123}, {7, 1000}, {2, 1025}, {9, 50257}, {1, 131071}};
  for (auto dt : {LogitsDType::kFloat32, LogitsDType::kBFloat16, LogitsDType::kFloat16})
    for (auto& s : shapes) check_tokens(s[0], s[1], dt, gen);
  check_pairs(gen);
  std::printf(failures ? "%d check(s) FAILED\n" : "all checks passed\n", failures);
  return failures ? 1 : 0;
}
