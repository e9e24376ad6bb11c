// The chunked DPO head on torch tensors (CPU or CUDA): picks the completion tokens, runs the
// LM head a chunk of whole pairs at a time, the fused per-token passes (kernel/logprob.h), the
// per-pair loss math (kernel/dpo_loss_math.h), and accumulates dhidden and dweight per chunk.
#include "kernel/fused_head.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "kernel/logprob.h"

namespace dpo {

namespace {

const char* const kLossNames[kNumLossTypes] = {
    "sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero",
    "apo_down", "sigmoid_norm", "exo_pair", "discopop"};

// ---------------------------------------------------------------------------------------------
// Per-token passes, on the tensors' device.

void token_logprobs(const torch::Tensor& logits, const torch::Tensor& rows,
                    const torch::Tensor& targets, torch::Tensor& logp, torch::Tensor& lse,
                    torch::Tensor& logit_sum) {
  if (logits.is_cuda()) {
#ifdef DPO_WITH_CUDA
    token_logprobs_cuda(logits, rows, targets, logp, lse, logit_sum);
    return;
#else
    TORCH_CHECK(false, "fused kernel: CUDA tensors need the addon built against a CUDA libtorch");
#endif
  }
  token_logprobs_cpu(logits, rows, targets, logp, lse, logit_sum);
}

void token_dlogits(const torch::Tensor& logits, const torch::Tensor& rows,
                   const torch::Tensor& targets, const torch::Tensor& lse,
                   const torch::Tensor& coef, torch::Tensor& dlogits) {
  if (logits.is_cuda()) {
#ifdef DPO_WITH_CUDA
    token_dlogits_cuda(logits, rows, targets, lse, coef, dlogits);
    return;
#else
    TORCH_CHECK(false, "fused kernel: CUDA tensors need the addon built against a CUDA libtorch");
#endif
  }
  token_dlogits_cpu(logits, rows, targets, lse, coef, dlogits);
}

// ---------------------------------------------------------------------------------------------
// Which tokens, in which order, in which chunks.

// The completion tokens of [R, T], ordered by unit: a unit is a pair (rows i and B + i, for the
// head) or a row. Host-side bookkeeping in `unit_end`; index tensors on the inputs' device.
struct TokenLayout {
  torch::Tensor flat_pos;          // [N] int64: row * T + t
  torch::Tensor tok_row;           // [N] int64: the row of each token
  std::vector<int64_t> unit_end;   // token offset where each unit ends (prefix sums)
  std::vector<double> row_tokens;  // [R] completion tokens per row
};

TokenLayout make_layout(const torch::Tensor& mask, bool paired, const torch::Device& device) {
  const int64_t R = mask.size(0), T = mask.size(1), B = R / 2;
  torch::Tensor m = (mask.to(torch::kCPU) != 0).contiguous();
  const bool* mp = m.data_ptr<bool>();

  std::vector<int64_t> order(R);  // rows in unit order
  for (int64_t i = 0; i < R; ++i) order[i] = paired ? (i % 2 == 0 ? i / 2 : B + i / 2) : i;

  TokenLayout L;
  L.row_tokens.assign(R, 0);
  std::vector<int64_t> pos, row;
  for (int64_t k = 0; k < R; ++k) {
    int64_t r = order[k];
    for (int64_t t = 0; t < T; ++t) {
      if (!mp[r * T + t]) continue;
      pos.push_back(r * T + t);
      row.push_back(r);
      L.row_tokens[r] += 1;
    }
    if (!paired || k % 2 == 1) L.unit_end.push_back(static_cast<int64_t>(pos.size()));
  }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  L.flat_pos = torch::tensor(pos, i64).to(device);
  L.tok_row = torch::tensor(row, i64).to(device);
  return L;
}

// Token ranges [begin, end) of the chunks. Whole units when each fits in `tokens_per_chunk`
// (then a chunk holds every token of its pairs and the loss is known after its forward);
// otherwise plain ranges of tokens_per_chunk tokens.
struct ChunkPlan {
  std::vector<std::pair<int64_t, int64_t>> chunks;
  bool whole_units = true;
};

ChunkPlan plan_chunks(const TokenLayout& L, int64_t tokens_per_chunk) {
  ChunkPlan plan;
  int64_t prev = 0;
  for (int64_t end : L.unit_end) {
    if (end - prev > tokens_per_chunk) plan.whole_units = false;
    prev = end;
  }
  const int64_t N = L.unit_end.empty() ? 0 : L.unit_end.back();
  if (!plan.whole_units) {
    for (int64_t a = 0; a < N; a += tokens_per_chunk)
      plan.chunks.push_back({a, std::min(N, a + tokens_per_chunk)});
    return plan;
  }
  int64_t begin = 0, last = 0;
  for (int64_t end : L.unit_end) {
    if (end - begin > tokens_per_chunk) {  // this unit starts a new chunk
      if (last > begin) plan.chunks.push_back({begin, last});
      begin = last;
    }
    last = end;
  }
  if (last > begin) plan.chunks.push_back({begin, last});
  return plan;
}

int64_t tokens_per_chunk(int64_t budget, int64_t V, int64_t C, const torch::Tensor& like) {
  // One token costs its logits row (dlogits overwrite it) and its hidden row and dhidden row.
  int64_t per_token = (V + 2 * C) * static_cast<int64_t>(like.element_size());
  return std::max<int64_t>(1, budget / per_token);
}

// ---------------------------------------------------------------------------------------------
// The pairs: losses and row coefficients from the rows' summed log-probs, on the host.

struct PairBatch {
  std::vector<PairTerms> terms;  // [B]
  std::vector<float> row_coef;   // [2B] c of dlogits = c * (softmax - onehot)
  double valid_pairs = 0, all_chosen_tokens = 0, bco_batch_mean = 0, bco_delta = 0;
};

// row_logps, ref_logps: [2B] float64 host tensors. The sums are first rounded to float32, the
// precision they are reported in, so that policy == reference gives exact zeros.
PairBatch compute_pairs(const torch::Tensor& row_logps, const torch::Tensor& ref_logps,
                        const std::vector<double>& row_tokens, const DpoLossConfig& cfg) {
  const int64_t B = row_logps.size(0) / 2;
  // Rounded by torch, as the reported float32 sums are (a cast here was not always honoured).
  torch::Tensor rounded = row_logps.to(torch::kFloat32).to(torch::kFloat64).contiguous();
  const double* S = rounded.data_ptr<double>();
  const double* ref = ref_logps.data_ptr<double>();
  PairBatch pb;
  std::vector<PairInputs> in(B);
  double reward_sum = 0;
  for (int64_t i = 0; i < B; ++i) {
    in[i] = {S[i], S[B + i], ref[i], ref[B + i],
             row_tokens[i], row_tokens[B + i]};
    pb.all_chosen_tokens += row_tokens[i];
    if (!(row_tokens[i] > 0 && row_tokens[B + i] > 0)) continue;
    pb.valid_pairs += 1;
    double u, w, sc, sr;
    pair_rewards(in[i], cfg, u, w, sc, sr);
    reward_sum += cfg.beta * (u + w);
  }
  pb.bco_batch_mean = pb.valid_pairs > 0 ? reward_sum / (2 * pb.valid_pairs) : 0.0;
  pb.bco_delta = bco_reward_shift(pb.bco_batch_mean, cfg);

  pb.terms.resize(B);
  pb.row_coef.assign(2 * B, 0.0f);
  for (int64_t i = 0; i < B; ++i) {
    pb.terms[i] = dpo_pair_terms(in[i], cfg, pb.bco_delta);
    double cc, cr;
    pair_row_coefficients(pb.terms[i], pb.valid_pairs, pb.all_chosen_tokens, cfg, cc, cr);
    pb.row_coef[i] = static_cast<float>(cc);
    pb.row_coef[B + i] = static_cast<float>(cr);
  }
  return pb;
}

// Fills the loss outputs from the final row sums.
void finish_outputs(FusedHeadOutput& out, const torch::Tensor& row_logps_dev,
                    const torch::Tensor& row_logit_sum_dev, const torch::Tensor& ref_host,
                    const std::vector<double>& row_tokens, const DpoLossConfig& cfg,
                    const torch::Device& device) {
  torch::Tensor S = row_logps_dev.to(torch::kCPU);
  const int64_t B = S.size(0) / 2;
  PairBatch pb = compute_pairs(S, ref_host, row_tokens, cfg);

  // RPO's NLL: mean negative log-prob of all chosen completion tokens.
  double nll = 0;
  torch::Tensor S_rounded = S.to(torch::kFloat32).to(torch::kFloat64);
  for (int64_t i = 0; i < B; ++i) nll -= S_rounded[i].item<double>();
  nll = pb.all_chosen_tokens > 0 ? nll / pb.all_chosen_tokens : 0.0;
  const double rpo = cfg.rpo_alpha != 0 ? cfg.rpo_alpha * nll : 0.0;

  torch::Tensor losses = torch::zeros({B}, torch::kFloat64);
  torch::Tensor rewards = torch::zeros({2 * B}, torch::kFloat64);
  double total = 0;
  for (int64_t i = 0; i < B; ++i) {
    const PairTerms& t = pb.terms[i];
    rewards[i] = t.chosen_reward;
    rewards[B + i] = t.rejected_reward;
    if (!t.valid) continue;
    losses[i] = t.loss + rpo;
    total += t.loss;
  }
  double loss = (pb.valid_pairs > 0 ? total / pb.valid_pairs : 0.0) + rpo;

  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor S32 = S.to(torch::kFloat32), lsum = row_logit_sum_dev.to(torch::kCPU).to(torch::kFloat32);
  torch::Tensor tokens = torch::tensor(std::vector<double>(row_tokens)).to(torch::kFloat32);
  rewards = rewards.to(torch::kFloat32);
  out.chosen_logps = S32.slice(0, 0, B).to(device);
  out.rejected_logps = S32.slice(0, B).to(device);
  out.chosen_rewards = rewards.slice(0, 0, B).to(device);
  out.rejected_rewards = rewards.slice(0, B).to(device);
  out.losses = losses.to(torch::kFloat32).to(device);
  out.loss = torch::tensor(loss, f32).to(device);
  out.chosen_logits_sum = lsum.slice(0, 0, B).to(device);
  out.rejected_logits_sum = lsum.slice(0, B).to(device);
  out.chosen_tokens = tokens.slice(0, 0, B).to(device);
  out.rejected_tokens = tokens.slice(0, B).to(device);
  if (cfg.loss_type == LossType::kBcoPair && pb.valid_pairs > 0) {
    out.bco_running_mean = pb.bco_delta;
    out.bco_running_count = cfg.bco_running_count + 1;
  } else {
    out.bco_running_mean = cfg.bco_running_mean;
    out.bco_running_count = cfg.bco_running_count;
  }
}

// ---------------------------------------------------------------------------------------------
// Argument checks.

void check_targets_mask(const torch::Tensor& targets, const torch::Tensor& mask, int64_t R,
                        int64_t T) {
  TORCH_CHECK(targets.dim() == 2 && targets.size(0) == R && targets.size(1) == T,
              "fused DPO head: expected targets [", R, ", ", T, "], got ", targets.sizes());
  TORCH_CHECK(!targets.is_floating_point(), "fused DPO head: targets must be integer token ids");
  TORCH_CHECK(mask.dim() == 2 && mask.size(0) == R && mask.size(1) == T,
              "fused DPO head: expected mask [", R, ", ", T, "], got ", mask.sizes());
}

void check_ref(const torch::Tensor& ref_logps, int64_t R, const DpoLossConfig& cfg) {
  if (cfg.reference_free && !ref_logps.defined()) return;
  TORCH_CHECK(ref_logps.defined() && ref_logps.numel() == R,
              "fused DPO head: expected ref_logps [", R, "] (summed reference log-probs per row)",
              ref_logps.defined() ? ", got " + std::to_string(ref_logps.numel()) + " values" : "");
}

torch::Tensor ref_to_host(const torch::Tensor& ref_logps, int64_t R) {
  if (!ref_logps.defined()) return torch::zeros({R}, torch::kFloat64);
  return ref_logps.reshape({R}).to(torch::kCPU).to(torch::kFloat64).contiguous();
}

// The completion targets [N], checked to be in [0, V).
torch::Tensor gather_targets(const torch::Tensor& targets, const TokenLayout& L, int64_t V) {
  torch::Tensor tg = targets.reshape({-1}).to(torch::kInt64).index_select(0, L.flat_pos);
  if (tg.numel() > 0) {
    int64_t lo = tg.min().item<int64_t>(), hi = tg.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < V, "fused DPO head: a completion target is outside the vocabulary [0, ",
                V, "): found ", lo < 0 ? lo : hi, "; check the mask covers only real tokens");
  }
  return tg.contiguous();
}

// The head's shared forward state: row sums accumulate over chunks.
struct HeadState {
  torch::Tensor h2;             // [R*T, C]
  torch::Tensor weight;         // [V, C]
  torch::Tensor tg;             // [N]
  torch::Tensor row_logps;      // [R] float64
  torch::Tensor row_logit_sum;  // [R] float64
};

// One chunk's forward: logits [n, V] of its tokens, their lse [n]; adds to the row sums.
void forward_chunk(HeadState& st, const TokenLayout& L, int64_t a, int64_t b, torch::Tensor& h,
                   torch::Tensor& logits, torch::Tensor& lse) {
  torch::Tensor idx = L.flat_pos.slice(0, a, b);
  h = st.h2.index_select(0, idx);
  logits = at::mm(h, st.weight.t());
  torch::Tensor logp, lsum;
  token_logprobs(logits, torch::Tensor(), st.tg.slice(0, a, b), logp, lse, lsum);
  torch::Tensor rows = L.tok_row.slice(0, a, b);
  st.row_logps.index_add_(0, rows, logp.to(torch::kFloat64));
  st.row_logit_sum.index_add_(0, rows, lsum.to(torch::kFloat64));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API.

LossType loss_type_from_string(const std::string& name) {
  for (int i = 0; i < kNumLossTypes; ++i)
    if (name == kLossNames[i]) return static_cast<LossType>(i);
  std::string valid;
  for (int i = 0; i < kNumLossTypes; ++i) valid += (i ? ", " : "") + std::string(kLossNames[i]);
  throw std::invalid_argument("unknown loss type '" + name + "'; expected one of " + valid);
}

const char* loss_type_name(LossType type) { return kLossNames[static_cast<int>(type)]; }

std::vector<std::string> loss_type_names() {
  return std::vector<std::string>(kLossNames, kLossNames + kNumLossTypes);
}

void validate_loss_config(const DpoLossConfig& c) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  if (!(c.beta > 0) || !std::isfinite(c.beta))
    fail("expected beta > 0, got " + std::to_string(c.beta) + "; beta scales the log-ratio, try 0.1");
  const double eps = c.label_smoothing;
  if (!(eps >= 0 && eps <= 1)) fail("expected label_smoothing in [0, 1], got " + std::to_string(eps));
  if (c.loss_type == LossType::kRobust && !(eps < 0.5))
    fail("robust loss: expected label_smoothing < 0.5, got " + std::to_string(eps));
  if (c.loss_type == LossType::kExoPair && !(eps < 1))
    fail("exo_pair loss: expected label_smoothing < 1, got " + std::to_string(eps));
  if (c.loss_type == LossType::kDiscopop && !(c.discopop_tau > 0))
    fail("discopop loss: expected discopop_tau > 0, got " + std::to_string(c.discopop_tau));
  if (!(c.bco_running_count >= 0))
    fail("expected bco_running_count >= 0, got " + std::to_string(c.bco_running_count));
  if (!std::isfinite(c.simpo_gamma) || !std::isfinite(c.rpo_alpha))
    fail("simpo_gamma and rpo_alpha must be finite");
  if (c.simpo_gamma != 0 && !c.reference_free)
    fail("expected simpo_gamma = 0 with a reference model, got " + std::to_string(c.simpo_gamma) +
         "; SimPO's margin applies to the reference-free mode, set reference_free too");
}

int64_t fused_head_auto_chunk_bytes(const torch::Device& device) {
  const int64_t MB = 1 << 20;
  if (device.is_cuda()) {
#ifdef DPO_WITH_CUDA
    // An eighth of the free device memory, between 256 MB and 4 GB.
    return std::clamp<int64_t>(cuda_free_bytes(device) / 8, 256 * MB, 4096 * MB);
#else
    return 1024 * MB;
#endif
  }
  // A 64th of the machine's memory, between 64 MB and 256 MB: chunks of a few hundred tokens keep
  // the matrix products efficient while the logits stay a small part of the peak. Total, not
  // available, memory: the chunks (and so the last bits of the sums) must not change from run to
  // run on one machine, or a seeded run would not repeat exactly.
  int64_t total = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb;
  std::string unit;
  while (meminfo >> key >> kb >> unit)
    if (key == "MemTotal:") total = kb * 1024;
  if (total <= 0) return 256 * MB;
  return std::clamp<int64_t>(total / 64, 64 * MB, 256 * MB);
}

FusedHeadOutput fused_dpo_head(const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, const torch::Tensor& mask,
                               const torch::Tensor& ref_logps, const DpoLossConfig& cfg,
                               bool compute_grad, int64_t max_chunk_bytes) {
  validate_loss_config(cfg);
  TORCH_CHECK(hidden.dim() == 3, "fused DPO head: expected hidden [2B, T, C], got ", hidden.sizes());
  const int64_t R = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  TORCH_CHECK(R % 2 == 0 && R > 0, "fused DPO head: expected an even number of rows (chosen then rejected), got ", R);
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == C,
              "fused DPO head: expected weight [V, ", C, "], got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == hidden.scalar_type() && weight.device() == hidden.device(),
              "fused DPO head: hidden and weight must share dtype and device");
  check_targets_mask(targets, mask, R, T);
  check_ref(ref_logps, R, cfg);
  const int64_t V = weight.size(0);
  TORCH_CHECK(V >= 1 && C >= 1, "fused DPO head: expected V >= 1 and C >= 1, got weight ",
              weight.sizes());
  const torch::Device device = hidden.device();

  // Completion tokens, pair by pair, and the chunks over them.
  torch::NoGradGuard no_grad;
  TokenLayout L = make_layout(mask, /*paired=*/true, device);
  HeadState st;
  st.h2 = hidden.reshape({R * T, C});
  st.weight = weight.contiguous();
  st.tg = gather_targets(targets, L, V);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  st.row_logps = torch::zeros({R}, f64);
  st.row_logit_sum = torch::zeros({R}, f64);
  const int64_t budget = max_chunk_bytes > 0 ? max_chunk_bytes : fused_head_auto_chunk_bytes(device);
  ChunkPlan plan = plan_chunks(L, tokens_per_chunk(budget, V, C, hidden));
  torch::Tensor ref_host = ref_to_host(ref_logps, R);

  // One pass when every chunk holds whole pairs and no loss couples pairs across chunks (bco_pair's
  // batch mean); otherwise a forward pass for the row sums, then a second pass for the gradient.
  const bool couples = cfg.loss_type == LossType::kBcoPair;
  const bool one_pass = plan.whole_units && !(couples && plan.chunks.size() > 1);

  FusedHeadOutput out;
  torch::Tensor dh_flat, dweight32;
  if (compute_grad) {
    dh_flat = torch::zeros({R * T, C}, hidden.options());
    dweight32 = torch::zeros({V, C}, weight.options().dtype(torch::kFloat32));
  }
  auto backward_chunk = [&](int64_t a, int64_t b, const torch::Tensor& h, torch::Tensor& logits,
                            const torch::Tensor& lse, const torch::Tensor& row_coef) {
    // dlogits = c * (softmax - onehot) in place of the logits, then the two products of the head.
    torch::Tensor coef = row_coef.index_select(0, L.tok_row.slice(0, a, b));
    token_dlogits(logits, torch::Tensor(), st.tg.slice(0, a, b), lse, coef, logits);
    dh_flat.index_copy_(0, L.flat_pos.slice(0, a, b), at::mm(logits, st.weight));
    if (dweight32.scalar_type() == logits.scalar_type())
      dweight32.addmm_(logits.t(), h);
    else
      dweight32.add_(at::mm(logits.t(), h).to(torch::kFloat32));
  };
  auto row_coef_now = [&]() {
    PairBatch pb = compute_pairs(st.row_logps.to(torch::kCPU), ref_host, L.row_tokens, cfg);
    return torch::tensor(pb.row_coef, torch::kFloat32).to(device);
  };

  if (!compute_grad) {
    // Forward only.
    for (auto [a, b] : plan.chunks) {
      torch::Tensor h, logits, lse;
      forward_chunk(st, L, a, b, h, logits, lse);
    }
  } else if (one_pass) {
    // Each chunk: logits, log-probs, its pairs' coefficients, dlogits, dhidden, dweight; drop it.
    for (auto [a, b] : plan.chunks) {
      torch::Tensor h, logits, lse;
      forward_chunk(st, L, a, b, h, logits, lse);
      backward_chunk(a, b, h, logits, lse, row_coef_now());
    }
  } else {
    // Pass 1: row sums (keeping each token's lse, [N] floats). Pass 2: logits again, gradient.
    std::vector<torch::Tensor> lses;
    for (auto [a, b] : plan.chunks) {
      torch::Tensor h, logits, lse;
      forward_chunk(st, L, a, b, h, logits, lse);
      lses.push_back(lse);
    }
    torch::Tensor row_coef = row_coef_now();
    for (size_t k = 0; k < plan.chunks.size(); ++k) {
      auto [a, b] = plan.chunks[k];
      torch::Tensor h = st.h2.index_select(0, L.flat_pos.slice(0, a, b));
      torch::Tensor logits = at::mm(h, st.weight.t());
      backward_chunk(a, b, h, logits, lses[k], row_coef);
    }
  }

  finish_outputs(out, st.row_logps, st.row_logit_sum, ref_host, L.row_tokens, cfg, device);
  if (compute_grad) {
    out.dhidden = dh_flat.reshape({R, T, C});
    out.dweight = dweight32.to(weight.scalar_type());
  }
  return out;
}

torch::Tensor fused_sequence_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& targets, const torch::Tensor& mask,
                                   int64_t max_chunk_bytes) {
  TORCH_CHECK(hidden.dim() == 3, "sequence log-probs: expected hidden [R, T, C], got ", hidden.sizes());
  const int64_t R = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == C,
              "sequence log-probs: expected weight [V, ", C, "], got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == hidden.scalar_type() && weight.device() == hidden.device(),
              "sequence log-probs: hidden and weight must share dtype and device");
  check_targets_mask(targets, mask, R, T);
  const int64_t V = weight.size(0);
  TORCH_CHECK(V >= 1 && C >= 1, "sequence log-probs: expected V >= 1 and C >= 1, got weight ",
              weight.sizes());
  const torch::Device device = hidden.device();

  // The same layout and chunks as fused_dpo_head for an even R, hence the same sums bit for bit.
  torch::NoGradGuard no_grad;
  TokenLayout L = make_layout(mask, /*paired=*/R % 2 == 0, device);
  HeadState st;
  st.h2 = hidden.reshape({R * T, C});
  st.weight = weight.contiguous();
  st.tg = gather_targets(targets, L, V);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  st.row_logps = torch::zeros({R}, f64);
  st.row_logit_sum = torch::zeros({R}, f64);
  const int64_t budget = max_chunk_bytes > 0 ? max_chunk_bytes : fused_head_auto_chunk_bytes(device);
  ChunkPlan plan = plan_chunks(L, tokens_per_chunk(budget, V, C, hidden));
  for (auto [a, b] : plan.chunks) {
    torch::Tensor h, logits, lse;
    forward_chunk(st, L, a, b, h, logits, lse);
  }
  return st.row_logps.to(torch::kFloat32);
}

FusedHeadOutput fused_dpo_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                               const torch::Tensor& mask, const torch::Tensor& ref_logps,
                               const DpoLossConfig& cfg, bool compute_grad) {
  validate_loss_config(cfg);
  TORCH_CHECK(logits.dim() == 3, "fused DPO loss: expected logits [2B, T, V], got ", logits.sizes());
  const int64_t R = logits.size(0), T = logits.size(1), V = logits.size(2);
  TORCH_CHECK(R % 2 == 0 && R > 0, "fused DPO loss: expected an even number of rows (chosen then rejected), got ", R);
  check_targets_mask(targets, mask, R, T);
  check_ref(ref_logps, R, cfg);
  const torch::Device device = logits.device();

  // Per-token pass over the completion rows of the logits, read where they lie.
  torch::NoGradGuard no_grad;
  TokenLayout L = make_layout(mask, /*paired=*/true, device);
  torch::Tensor tg = gather_targets(targets, L, V);
  torch::Tensor z = logits.contiguous().reshape({R * T, V});
  torch::Tensor logp, lse, lsum;
  token_logprobs(z, L.flat_pos, tg, logp, lse, lsum);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  torch::Tensor row_logps = torch::zeros({R}, f64).index_add_(0, L.tok_row, logp.to(torch::kFloat64));
  torch::Tensor row_logit_sum = torch::zeros({R}, f64).index_add_(0, L.tok_row, lsum.to(torch::kFloat64));

  // The pairs, then dlogits at the completion rows (zero elsewhere).
  FusedHeadOutput out;
  torch::Tensor ref_host = ref_to_host(ref_logps, R);
  finish_outputs(out, row_logps, row_logit_sum, ref_host, L.row_tokens, cfg, device);
  if (compute_grad) {
    PairBatch pb = compute_pairs(row_logps.to(torch::kCPU), ref_host, L.row_tokens, cfg);
    torch::Tensor coef = torch::tensor(pb.row_coef, torch::kFloat32).to(device).index_select(0, L.tok_row);
    torch::Tensor dlogits = torch::zeros_like(z);
    token_dlogits(z, L.flat_pos, tg, lse, coef, dlogits);
    out.dlogits = dlogits.reshape({R, T, V});
  }
  return out;
}

}  // namespace dpo
