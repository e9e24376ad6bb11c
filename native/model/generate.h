// Autoregressive sampling from GPT2: greedy, temperature, top-k and top-p, with a KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "model/gpt2.h"

namespace dpo {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 1.0;  // 0 means greedy
  int64_t top_k = 0;         // 0 keeps every token
  double top_p = 1.0;        // 1 keeps every token
  int64_t eos_token_id = 50256;  // generation stops after emitting it; < 0 never stops
  uint64_t seed = 0;
  bool use_cache = true;
};

// Returns only the new tokens (the eos token included when emitted).
std::vector<int64_t> generate(GPT2& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts);

}  // namespace dpo
