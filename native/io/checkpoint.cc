// Mapping between GPT2's parameters and Hugging Face checkpoint keys.
#include "io/checkpoint.h"

#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "io/safetensors.h"

namespace dpo {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// h.N.attn.bias and h.N.attn.masked_bias are causal-mask buffers, not parameters.
bool is_mask_buffer(const std::string& key) {
  return starts_with(key, "h.") && (ends_with(key, ".attn.bias") || ends_with(key, ".attn.masked_bias"));
}

std::string shape_str(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string config_summary(const GPT2Config& c) {
  return "n_layer=" + std::to_string(c.n_layer) + " n_embd=" + std::to_string(c.n_embd) +
         " n_positions=" + std::to_string(c.n_positions) + " vocab_size=" + std::to_string(c.vocab_size);
}

}  // namespace

void checkpoint_load(GPT2& model, const std::vector<std::string>& files) {
  if (files.empty()) throw std::runtime_error("checkpoint: no safetensors files to load");
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  // Key without "transformer." -> (shard, key as stored).
  std::map<std::string, std::pair<size_t, std::string>> keys;
  for (const auto& path : files) {
    shards.push_back(std::make_unique<SafetensorsFile>(path));
    for (const auto& [key, entry] : shards.back()->entries()) {
      std::string bare = starts_with(key, "transformer.") ? key.substr(12) : key;
      if (is_mask_buffer(bare)) continue;
      if (keys.count(bare))
        throw std::runtime_error(path + ": tensor " + key + " also appears as " +
                                 keys[bare].second + " in " + files[keys[bare].first]);
      keys[bare] = {shards.size() - 1, key};
    }
  }

  // Check every tensor before copying any, so that a bad file leaves the model as it was.
  const GPT2Config& cfg = model.config();
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (parameter, stored view)
  std::set<std::string> used;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    auto it = keys.find(name);
    if (it == keys.end())
      throw std::runtime_error(files[0] + ": missing tensor " + name + " (expected shape " +
                               shape_str(param.sizes()) + " for config.json " +
                               config_summary(cfg) + ")");
    const SafetensorsFile& shard = *shards[it->second.first];
    torch::Tensor stored = shard.view(it->second.second);
    if (stored.sizes() != param.sizes())
      throw std::runtime_error(shard.path() + ": tensor " + it->second.second + " has shape " +
                               shape_str(stored.sizes()) + " but config.json (" +
                               config_summary(cfg) + ") expects " + shape_str(param.sizes()));
    if (!stored.is_floating_point())
      throw std::runtime_error(shard.path() + ": tensor " + it->second.second +
                               " is not a floating-point tensor");
    copies.emplace_back(param, stored);
    used.insert(name);
  }
  for (const auto& [bare, where] : keys) {
    if (used.count(bare)) continue;
    // A tied model ignores a stored LM head, as transformers does.
    if (bare == "lm_head.weight" && cfg.tie_word_embeddings) continue;
    throw std::runtime_error(files[where.first] + ": unexpected tensor " + where.second +
                             " (not part of a GPT-2 with config.json " + config_summary(cfg) +
                             "); is this checkpoint a GPT-2?");
  }

  torch::NoGradGuard no_grad;
  for (auto& [param, stored] : copies) param.copy_(stored);  // converts F16/BF16 as it copies
}

void checkpoint_save(GPT2& model, const std::string& path, const std::string& dtype) {
  torch::ScalarType type;
  if (dtype == "float32") type = torch::kFloat32;
  else if (dtype == "float16") type = torch::kFloat16;
  else if (dtype == "bfloat16") type = torch::kBFloat16;
  else
    throw std::invalid_argument("checkpoint: expected dtype float32, float16 or bfloat16, got " +
                                dtype);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    std::string key = starts_with(name, "lm_head.") ? name : "transformer." + name;
    tensors.emplace_back(key, item.value().detach().to(type));
  }
  safetensors_save(path, tensors, {{"format", "pt"}});
}

}  // namespace dpo
