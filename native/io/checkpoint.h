// GPT-2 weights in Hugging Face's safetensors layout: key names, the Conv1D [in, out] weight
// layout, tied or separate LM head, F32/F16/BF16 on disk.
#pragma once

#include <string>
#include <vector>

#include "model/gpt2.h"

namespace dpo {

// Loads every parameter of `model` from one or more safetensors files (the shards of one
// checkpoint). Accepts keys with or without the "transformer." prefix and ignores the
// attention-mask buffers (h.N.attn.bias, h.N.attn.masked_bias) that older checkpoints carry.
// A missing, misshapen or unexpected tensor is an error that names it against the config.
void checkpoint_load(GPT2& model, const std::vector<std::string>& files);

// Writes `model` as Hugging Face's GPT2LMHeadModel does ("transformer." keys, no lm_head.weight
// when tied) in `dtype` ("float32", "float16" or "bfloat16"), atomically.
void checkpoint_save(GPT2& model, const std::string& path, const std::string& dtype);

}  // namespace dpo
