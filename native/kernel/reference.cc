// The unfused DPO head in plain libtorch with autograd (logits for every position, log_softmax,
// gather, the loss formula, backward), as TRL computes it. It shares no code with the fused
// kernel: the tests hold the kernel to it, and the benchmark measures against it.
#include "kernel/reference.h"

#include <torch/nn/functional/activation.h>

namespace dpo {

namespace {

namespace F = torch::nn::functional;

struct RowTerms {
  torch::Tensor S;      // [R] summed log-probs (float32, with grad)
  torch::Tensor n;      // [R] completion tokens (float64)
  torch::Tensor lsum;   // [R] sum of the logits over completion tokens and vocabulary
};

RowTerms row_terms(const torch::Tensor& logits, const torch::Tensor& targets,
                   const torch::Tensor& mask) {
  torch::Tensor m = mask != 0;
  torch::Tensor tg = torch::where(m, targets.to(torch::kInt64), torch::zeros_like(targets, torch::kInt64));
  torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat32), -1);
  torch::Tensor tok = logp.gather(-1, tg.unsqueeze(-1)).squeeze(-1);
  tok = torch::where(m, tok, torch::zeros_like(tok));
  RowTerms r;
  r.S = tok.sum(1);
  r.n = m.sum(1).to(torch::kFloat64);
  torch::Tensor z = logits.detach().to(torch::kFloat32);
  r.lsum = torch::where(m.unsqueeze(-1), z, torch::zeros_like(z)).sum({1, 2});
  return r;
}

// The loss from the row sums, written out with torch ops (autograd derives the gradient).
FusedHeadOutput loss_from_rows(const RowTerms& rt, const torch::Tensor& ref_logps,
                               const DpoLossConfig& c) {
  const int64_t R = rt.S.size(0), B = R / 2;
  const double beta = c.beta;
  torch::Tensor S = rt.S.to(torch::kFloat64);
  torch::Tensor ref = c.reference_free || !ref_logps.defined()
                          ? torch::zeros({R}, torch::kFloat64)
                          : ref_logps.reshape({R}).to(torch::kFloat64);
  bool avg = c.loss_type == LossType::kIpo || c.loss_type == LossType::kSigmoidNorm || c.reference_free;
  torch::Tensor n = rt.n.clamp_min(1);
  torch::Tensor score = avg ? S / n : S;
  torch::Tensor ref_score = avg ? ref / n : ref;
  torch::Tensor logratio = score - ref_score;
  torch::Tensor u = logratio.slice(0, 0, B), w = logratio.slice(0, B);
  torch::Tensor valid = (rt.n.slice(0, 0, B) > 0) & (rt.n.slice(0, B) > 0);
  torch::Tensor P = valid.sum().to(torch::kFloat64);
  torch::Tensor logits = u - w - c.simpo_gamma / beta;
  torch::Tensor z = beta * logits;
  const double eps = c.label_smoothing;

  torch::Tensor l;
  switch (c.loss_type) {
    case LossType::kSigmoid:
    case LossType::kSigmoidNorm:
      l = -F::logsigmoid(z) * (1 - eps) - F::logsigmoid(-z) * eps;
      break;
    case LossType::kRobust:
      l = (-F::logsigmoid(z) * (1 - eps) + F::logsigmoid(-z) * eps) / (1 - 2 * eps);
      break;
    case LossType::kHinge:
      l = torch::relu(1 - z);
      break;
    case LossType::kIpo:
      l = (logits - 1 / (2 * beta)).pow(2);
      break;
    case LossType::kExoPair: {
      double e = eps > 0 ? eps : 1e-3;
      l = torch::sigmoid(z) * (F::logsigmoid(z) - std::log(1 - e)) +
          torch::sigmoid(-z) * (F::logsigmoid(-z) - std::log(e));
      break;
    }
    case LossType::kDiscopop: {
      torch::Tensor mod = torch::sigmoid(z / c.discopop_tau);
      l = -F::logsigmoid(z) * (1 - mod) + torch::exp(-z) * mod;
      break;
    }
    case LossType::kBcoPair: {
      torch::Tensor rc = beta * u, rr = beta * w;
      torch::Tensor mean = (torch::where(valid, rc + rr, torch::zeros_like(rc)).sum() /
                            (2 * P.clamp_min(1))).detach();
      torch::Tensor delta = (c.bco_running_count * c.bco_running_mean + mean) / (c.bco_running_count + 1);
      l = -F::logsigmoid(rc - delta) - F::logsigmoid(-(rr - delta));
      break;
    }
    case LossType::kSppoHard:
      l = (u - 0.5 / beta).pow(2) + (w + 0.5 / beta).pow(2);
      break;
    case LossType::kNcaPair: {
      torch::Tensor rc = beta * u, rr = beta * w;
      l = -F::logsigmoid(rc) - 0.5 * F::logsigmoid(-rc) - 0.5 * F::logsigmoid(-rr);
      break;
    }
    case LossType::kApoZero:
      l = 1 - torch::sigmoid(beta * u) + torch::sigmoid(beta * w);
      break;
    case LossType::kApoDown:
      l = torch::sigmoid(beta * u) + 1 - torch::sigmoid(beta * (u - w));
      break;
  }
  l = torch::where(valid, l, torch::zeros_like(l));

  // RPO: mean NLL over every chosen completion token.
  torch::Tensor n_chosen = rt.n.slice(0, 0, B).sum();
  torch::Tensor nll = torch::where(n_chosen > 0, -S.slice(0, 0, B).sum() / n_chosen.clamp_min(1),
                                   torch::zeros_like(n_chosen));
  torch::Tensor rpo = c.rpo_alpha * nll;

  FusedHeadOutput out;
  out.loss = l.sum() / P.clamp_min(1) + rpo;
  out.losses = torch::where(valid, l + rpo, torch::zeros_like(l)).detach().to(torch::kFloat32);
  torch::Tensor zero = torch::zeros_like(u);
  out.chosen_rewards = torch::where(valid, beta * u, zero).detach().to(torch::kFloat32);
  out.rejected_rewards = torch::where(valid, beta * w, zero).detach().to(torch::kFloat32);
  out.chosen_logps = rt.S.slice(0, 0, B).detach();
  out.rejected_logps = rt.S.slice(0, B).detach();
  out.chosen_logits_sum = rt.lsum.slice(0, 0, B);
  out.rejected_logits_sum = rt.lsum.slice(0, B);
  out.chosen_tokens = rt.n.slice(0, 0, B).to(torch::kFloat32);
  out.rejected_tokens = rt.n.slice(0, B).to(torch::kFloat32);
  return out;
}

}  // namespace

FusedHeadOutput reference_dpo_head(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& targets, const torch::Tensor& mask,
                                   const torch::Tensor& ref_logps, const DpoLossConfig& cfg,
                                   bool compute_grad) {
  validate_loss_config(cfg);
  torch::AutoGradMode grad_mode(compute_grad);
  torch::Tensor h = hidden.detach().requires_grad_(compute_grad);
  torch::Tensor W = weight.detach().requires_grad_(compute_grad);

  // Forward: logits at every position, as TRL's concatenated forward does.
  torch::Tensor logits = torch::matmul(h, W.t());
  FusedHeadOutput out = loss_from_rows(row_terms(logits, targets, mask), ref_logps, cfg);

  // Backward.
  if (compute_grad) {
    out.loss.backward();
    out.dhidden = h.grad();
    out.dweight = W.grad();
  }
  out.loss = out.loss.detach().to(torch::kFloat32);
  return out;
}

FusedHeadOutput reference_dpo_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                   const torch::Tensor& mask, const torch::Tensor& ref_logps,
                                   const DpoLossConfig& cfg, bool compute_grad) {
  validate_loss_config(cfg);
  torch::AutoGradMode grad_mode(compute_grad);
  torch::Tensor z = logits.detach().requires_grad_(compute_grad);
  FusedHeadOutput out = loss_from_rows(row_terms(z, targets, mask), ref_logps, cfg);
  if (compute_grad) {
    out.loss.backward();
    out.dlogits = z.grad();
  }
  out.loss = out.loss.detach().to(torch::kFloat32);
  return out;
}

torch::Tensor reference_sequence_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                       const torch::Tensor& targets, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  return row_terms(torch::matmul(hidden, weight.t()), targets, mask).S;
}

}  // namespace dpo
