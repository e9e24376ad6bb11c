// The math of the fused DPO kernel, in one place for the CPU path and the CUDA path: the DPO
// loss family per pair with its derivatives, and the online logsumexp step. No torch headers:
// nvcc compiles this for the device, the host compiler for the CPU kernel.
#pragma once

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define DPO_HD __host__ __device__
#else
#define DPO_HD
#endif

namespace dpo {

// Loss types, named as in TRL's DPOConfig.loss_type.
enum class LossType : int32_t {
  kSigmoid, kHinge, kIpo, kRobust, kBcoPair, kSppoHard, kNcaPair, kApoZero, kApoDown,
  kSigmoidNorm, kExoPair, kDiscopop
};
constexpr int kNumLossTypes = 12;

// The loss and its parameters, with TRL's defaults. Plain data: it is passed to CUDA kernels by
// value.
struct DpoLossConfig {
  LossType loss_type = LossType::kSigmoid;
  double beta = 0.1;
  // sigmoid: conservative DPO's label noise; robust: rDPO's; exo_pair: EXO's epsilon (1e-3 when 0).
  double label_smoothing = 0.0;
  // No reference model: the scores are length-normalised log-probs (SimPO) and the reference
  // log-ratios are zero; simpo_gamma is SimPO's target margin, subtracted from beta * delta
  // (reference-free only: validate_loss_config rejects it with a reference).
  bool reference_free = false;
  double simpo_gamma = 0.0;
  // RPO: alpha * (mean NLL of the chosen completion tokens) is added to the loss.
  double rpo_alpha = 0.0;
  // DiscoPOP's temperature.
  double discopop_tau = 0.05;
  // bco_pair's running mean of the rewards (TRL's RunningMoments: mean and count of the batch
  // means seen so far; count 0 means no history, so the batch mean alone is the shift).
  double bco_running_mean = 0.0;
  double bco_running_count = 0.0;
};

// ---------------------------------------------------------------------------------------------
// Scalar helpers, stable for any argument.

DPO_HD inline double dpo_sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

// log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)).
DPO_HD inline double dpo_log_sigmoid(double x) {
  return (x < 0 ? x : 0.0) - log1p(exp(-fabs(x)));
}

// sigmoid'(x) = sigmoid(x) * sigmoid(-x).
DPO_HD inline double dpo_dsigmoid(double x) { return dpo_sigmoid(x) * dpo_sigmoid(-x); }

// One step of the online logsumexp: the running (max m, sum s of exp(z - m)) absorbs another
// (m2, s2). A max of -inf means "nothing seen yet" and must not produce NaN (exp(-inf - -inf)).
DPO_HD inline void lse_combine(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) { m = m2; s = s2; return; }
  if (m2 > m) {
    s = s * expf(m - m2) + s2;
    m = m2;
  } else {
    s = s + s2 * expf(m2 - m);
  }
}

// ---------------------------------------------------------------------------------------------
// Per pair.

// True for the losses that score a sequence by its mean token log-prob instead of the sum: IPO
// (TRL averages per token for ipo), length-normalised DPO (sigmoid_norm), and SimPO's
// reference-free mode. The reference log-probs are averaged the same way.
DPO_HD inline bool loss_averages_logps(const DpoLossConfig& c) {
  return c.loss_type == LossType::kIpo || c.loss_type == LossType::kSigmoidNorm || c.reference_free;
}

// One pair's inputs: summed log-probs of its completion tokens under the policy and the
// reference, and the number of completion tokens of each row.
struct PairInputs {
  double chosen_logps, rejected_logps;
  double ref_chosen_logps, ref_rejected_logps;
  double chosen_tokens, rejected_tokens;
};

// One pair's loss l, its derivatives with respect to the pair's summed log-probs (dl/dS, before
// the 1/B of the batch mean), and the rewards beta * (score - ref score).
struct PairTerms {
  double loss, dchosen, drejected;
  double chosen_reward, rejected_reward;
  bool valid;  // false when a row has no completion token: the pair then adds nothing
};

// The rewards of a pair as TRL reports them, also bco_pair's input: beta * (score - ref score).
DPO_HD inline void pair_rewards(const PairInputs& p, const DpoLossConfig& c, double& u, double& w,
                                double& scale_c, double& scale_r) {
  bool avg = loss_averages_logps(c);
  scale_c = avg ? 1.0 / (p.chosen_tokens > 0 ? p.chosen_tokens : 1.0) : 1.0;
  scale_r = avg ? 1.0 / (p.rejected_tokens > 0 ? p.rejected_tokens : 1.0) : 1.0;
  double ref_c = c.reference_free ? 0.0 : p.ref_chosen_logps;
  double ref_r = c.reference_free ? 0.0 : p.ref_rejected_logps;
  u = (p.chosen_logps - ref_c) * scale_c;    // chosen log-ratio
  w = (p.rejected_logps - ref_r) * scale_r;  // rejected log-ratio
}

// Every loss is written in the log-ratios u (chosen) and w (rejected), with delta = u - w - gamma/beta
// and z = beta * delta. dl/du and dl/dw follow by hand; the chain to the summed log-probs is
// dl/dS = dl/du * du/dS, where du/dS is 1, or 1/tokens for the averaging losses.
// `bco_delta` is bco_pair's reward shift (see bco_reward_shift); other losses ignore it.
DPO_HD inline PairTerms dpo_pair_terms(const PairInputs& p, const DpoLossConfig& c,
                                       double bco_delta) {
  PairTerms r = {0, 0, 0, 0, 0, false};
  if (!(p.chosen_tokens > 0) || !(p.rejected_tokens > 0)) return r;
  r.valid = true;

  double u, w, scale_c, scale_r;
  pair_rewards(p, c, u, w, scale_c, scale_r);
  const double beta = c.beta;
  r.chosen_reward = beta * u;
  r.rejected_reward = beta * w;
  const double delta = u - w - c.simpo_gamma / beta;
  const double z = beta * delta;
  double l = 0, du = 0, dw = 0;

  switch (c.loss_type) {
    case LossType::kSigmoid:
    case LossType::kSigmoidNorm: {
      // DPO (Rafailov et al. 2023, eq. 7) with cDPO's label smoothing eps (Mitchell 2023):
      //   l = -(1 - eps) log s(z) - eps log s(-z);  dl/dz = -(1 - eps) s(-z) + eps s(z).
      // sigmoid_norm is the same on length-normalised log-ratios (Tulu 3's length-normalised DPO).
      // eps = 0, u = w = 0: l = ln 2 and dl/du = -beta/2.
      double eps = c.label_smoothing;
      l = -(1 - eps) * dpo_log_sigmoid(z) - eps * dpo_log_sigmoid(-z);
      double dz = -(1 - eps) * dpo_sigmoid(-z) + eps * dpo_sigmoid(z);
      du = beta * dz;
      dw = -beta * dz;
      break;
    }
    case LossType::kRobust: {
      // rDPO (Chowdhury et al. 2024, eq. 6), unbiased under label flips with rate eps < 1/2:
      //   l = ((1 - eps)(-log s(z)) + eps log s(-z)) / (1 - 2 eps)
      //   dl/dz = (-(1 - eps) s(-z) - eps s(z)) / (1 - 2 eps).
      double eps = c.label_smoothing;
      l = (-(1 - eps) * dpo_log_sigmoid(z) + eps * dpo_log_sigmoid(-z)) / (1 - 2 * eps);
      double dz = (-(1 - eps) * dpo_sigmoid(-z) - eps * dpo_sigmoid(z)) / (1 - 2 * eps);
      du = beta * dz;
      dw = -beta * dz;
      break;
    }
    case LossType::kHinge: {
      // SLiC (Zhao et al. 2023, eq. 3): l = max(0, 1 - z); dl/dz = -1 where 1 - z > 0, else 0.
      l = 1 - z > 0 ? 1 - z : 0.0;
      double dz = 1 - z > 0 ? -1.0 : 0.0;
      du = beta * dz;
      dw = -beta * dz;
      break;
    }
    case LossType::kIpo: {
      // IPO (Azar et al. 2023, eq. 17), tau = beta, on per-token mean log-ratios:
      //   l = (delta - 1/(2 beta))^2;  dl/ddelta = 2 (delta - 1/(2 beta)).
      double e = delta - 1 / (2 * beta);
      l = e * e;
      du = 2 * e;
      dw = -2 * e;
      break;
    }
    case LossType::kExoPair: {
      // EXO (Ji et al. 2024, eq. 12 with two candidates), eps = label_smoothing or 1e-3:
      //   l = s(z)(log s(z) - log(1 - eps)) + s(-z)(log s(-z) - log eps)
      //   dl/dz = s(z) s(-z) (z - log((1 - eps)/eps)), using log s(z) - log s(-z) = z.
      double eps = c.label_smoothing > 0 ? c.label_smoothing : 1e-3;
      l = dpo_sigmoid(z) * (dpo_log_sigmoid(z) - log(1 - eps)) +
          dpo_sigmoid(-z) * (dpo_log_sigmoid(-z) - log(eps));
      double dz = dpo_dsigmoid(z) * (z - log((1 - eps) / eps));
      du = beta * dz;
      dw = -beta * dz;
      break;
    }
    case LossType::kDiscopop: {
      // DiscoPOP (Lu et al. 2024, eq. 5), a blend of the logistic and exponential losses:
      //   m = s(z/tau);  l = -log s(z) (1 - m) + exp(-z) m
      //   dl/dz = -s(-z)(1 - m) + m' log s(z) - exp(-z) m + exp(-z) m',  m' = s'(z/tau) / tau.
      // exp(-z) m and exp(-z) m' are formed in log space: exp(-z) overflows where m underflows.
      double tau = c.discopop_tau;
      double m = dpo_sigmoid(z / tau);
      double dm = dpo_dsigmoid(z / tau) / tau;
      double exp_m = exp(-z + dpo_log_sigmoid(z / tau));
      double exp_dm = exp(-z + dpo_log_sigmoid(z / tau) + dpo_log_sigmoid(-z / tau)) / tau;
      l = -dpo_log_sigmoid(z) * (1 - m) + exp_m;
      double dz = -dpo_sigmoid(-z) * (1 - m) + dm * dpo_log_sigmoid(z) - exp_m + exp_dm;
      du = beta * dz;
      dw = -beta * dz;
      break;
    }
    case LossType::kBcoPair: {
      // BCO on pairs (Jung et al. 2024, eq. 7): rewards shifted by the running mean delta of
      // the batch's rewards, a constant for the gradient (TRL detaches it):
      //   l = -log s(beta u - d) - log s(-(beta w - d))
      //   dl/du = -beta s(-(beta u - d));  dl/dw = beta s(beta w - d).
      double rc = beta * u - bco_delta, rr = beta * w - bco_delta;
      l = -dpo_log_sigmoid(rc) - dpo_log_sigmoid(-rr);
      du = -beta * dpo_sigmoid(-rc);
      dw = beta * dpo_sigmoid(rr);
      break;
    }
    case LossType::kSppoHard: {
      // SPPO with hard labels (Wu et al. 2024, eq. 4.8): chosen log-ratio pulled to 1/(2 beta),
      // rejected to -1/(2 beta): l = (u - 1/(2b))^2 + (w + 1/(2b))^2.
      double a = u - 0.5 / beta, b = w + 0.5 / beta;
      l = a * a + b * b;
      du = 2 * a;
      dw = 2 * b;
      break;
    }
    case LossType::kNcaPair: {
      // NCA (Chen et al. 2024, eq. 11), rewards rc = beta u, rr = beta w:
      //   l = -log s(rc) - 1/2 log s(-rc) - 1/2 log s(-rr)
      //   dl/du = beta (-s(-rc) + s(rc)/2);  dl/dw = beta s(rr)/2.
      double rc = beta * u, rr = beta * w;
      l = -dpo_log_sigmoid(rc) - 0.5 * dpo_log_sigmoid(-rc) - 0.5 * dpo_log_sigmoid(-rr);
      du = beta * (-dpo_sigmoid(-rc) + 0.5 * dpo_sigmoid(rc));
      dw = beta * 0.5 * dpo_sigmoid(rr);
      break;
    }
    case LossType::kApoZero: {
      // APO-zero (D'Oosterlinck et al. 2024, eq. 7): l = 1 - s(beta u) + s(beta w);
      //   dl/du = -beta s'(beta u);  dl/dw = beta s'(beta w).
      l = 1 - dpo_sigmoid(beta * u) + dpo_sigmoid(beta * w);
      du = -beta * dpo_dsigmoid(beta * u);
      dw = beta * dpo_dsigmoid(beta * w);
      break;
    }
    case LossType::kApoDown: {
      // APO-down (same paper, eq. 8): l = s(beta u) + 1 - s(beta (u - w));
      //   dl/du = beta s'(beta u) - beta s'(beta (u - w));  dl/dw = beta s'(beta (u - w)).
      l = dpo_sigmoid(beta * u) + 1 - dpo_sigmoid(beta * (u - w));
      du = beta * dpo_dsigmoid(beta * u) - beta * dpo_dsigmoid(beta * (u - w));
      dw = beta * dpo_dsigmoid(beta * (u - w));
      break;
    }
  }

  r.loss = l;
  r.dchosen = du * scale_c;
  r.drejected = dw * scale_r;
  return r;
}

// bco_pair's shift: TRL's RunningMoments after absorbing this batch's mean reward (the mean of
// the 2P rewards of the P valid pairs) as one more sample: (count * mean + batch) / (count + 1).
DPO_HD inline double bco_reward_shift(double batch_mean, const DpoLossConfig& c) {
  return (c.bco_running_count * c.bco_running_mean + batch_mean) / (c.bco_running_count + 1);
}

// The coefficients c of the rows of one pair in dlogits = c * (softmax(z) - onehot(y)):
// c = -dL/dS for L = (1/P) sum_pairs l + alpha * NLL, where P counts the valid pairs and
// NLL = -(sum of chosen summed log-probs) / (all chosen completion tokens) is RPO's term.
DPO_HD inline void pair_row_coefficients(const PairTerms& t, double valid_pairs,
                                         double all_chosen_tokens, const DpoLossConfig& c,
                                         double& coef_chosen, double& coef_rejected) {
  double inv_p = valid_pairs > 0 ? 1.0 / valid_pairs : 0.0;
  coef_chosen = t.valid ? -t.dchosen * inv_p : 0.0;
  coef_rejected = t.valid ? -t.drejected * inv_p : 0.0;
  if (c.rpo_alpha != 0 && all_chosen_tokens > 0) coef_chosen += c.rpo_alpha / all_chosen_tokens;
}

}  // namespace dpo
