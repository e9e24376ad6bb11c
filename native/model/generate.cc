// Sampling loop: one forward of the prompt, then one position a step through the KV cache.
#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

namespace dpo {

namespace {

// logits: [V] fp32 -> next token id.
int64_t pick_token(torch::Tensor logits, const GenerateOptions& opts, at::Generator& gen) {
  if (opts.temperature <= 0.0) return logits.argmax().item<int64_t>();
  logits = logits / opts.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (opts.top_k > 0 && opts.top_k < logits.size(0)) {
    torch::Tensor kth = std::get<0>(logits.topk(opts.top_k)).min();
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (opts.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose probability reaches top_p.
    auto [sorted, order] = logits.sort(/*dim=*/0, /*descending=*/true);
    torch::Tensor cum = sorted.softmax(0).cumsum(0);
    torch::Tensor drop_sorted = (cum - sorted.softmax(0)) >= opts.top_p;  // mass before it
    torch::Tensor drop = torch::zeros_like(drop_sorted).scatter(0, order, drop_sorted);
    logits = logits.masked_fill(drop, neg_inf);
  }
  return torch::multinomial(logits.softmax(0), 1, /*replacement=*/false, gen).item<int64_t>();
}

}  // namespace

std::vector<int64_t> generate(GPT2& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt has no tokens");
  const int64_t limit = model.config().n_positions;
  if (static_cast<int64_t>(prompt.size()) >= limit)
    throw std::invalid_argument("generate: the prompt has " + std::to_string(prompt.size()) +
                                " tokens, the model's n_positions is " + std::to_string(limit));
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  at::Generator gen = at::detail::createCPUGenerator(opts.seed);

  std::vector<int64_t> seq(prompt);
  std::vector<int64_t> out;
  KVCache cache;
  torch::Tensor next_input = torch::tensor(seq, torch::kInt64).unsqueeze(0);  // [1, T]
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    if (static_cast<int64_t>(seq.size()) >= limit) break;  // no position left
    torch::Tensor logits = opts.use_cache
        ? model.forward(next_input, ForwardOutput::kLogits, &cache)
        : model.forward(torch::tensor(seq, torch::kInt64).unsqueeze(0), ForwardOutput::kLogits);
    int64_t token = pick_token(logits[0][-1].to(torch::kFloat32), opts, gen);
    seq.push_back(token);
    out.push_back(token);
    if (token == opts.eos_token_id) break;
    next_input = torch::full({1, 1}, token, torch::kInt64);
  }
  if (was_training) model.train();
  return out;
}

}  // namespace dpo
