// JS functions over the fused log-prob / DPO loss kernel and the chunked LM head
// (native.kernel), the unfused reference, the head benchmark, and native.memory.
#include "bindings/kernel_binding.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>

#include "common/async.h"
#include "common/memory_stats.h"
#include "common/tensor_js.h"
#include "kernel/fused_head.h"
#include "kernel/reference.h"

namespace dpo {

namespace {

// The inputs of one dpoLoss call, read on the main thread.
struct LossCall {
  torch::Tensor logits, hidden, weight, targets, mask, ref_logps;
  DpoLossConfig cfg;
  bool compute_grad = true;
  int64_t max_chunk_bytes = 0;
};

torch::ScalarType dtype_option(const Napi::Object& o) {
  std::string d = get_string(o, "dtype", "float32");
  if (d == "float32") return torch::kFloat32;
  if (d == "bfloat16") return torch::kBFloat16;
  if (d == "float16") return torch::kFloat16;
  throw Napi::TypeError::New(o.Env(), "option dtype: expected 'float32', 'bfloat16' or 'float16', got '" + d + "'");
}

torch::Tensor optional_tensor(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return torch::Tensor();
  return tensor_from_js(v, key);
}

LossCall loss_call_from_js(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, std::string(fn) + ": expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  LossCall call;
  torch::ScalarType dtype = dtype_option(o);
  call.logits = optional_tensor(o, "logits");
  call.hidden = optional_tensor(o, "hidden");
  call.weight = optional_tensor(o, "weight");
  if (call.logits.defined() == (call.hidden.defined() || call.weight.defined()))
    throw Napi::TypeError::New(env, std::string(fn) + ": pass either logits, or hidden and weight");
  if (!call.logits.defined() && !(call.hidden.defined() && call.weight.defined()))
    throw Napi::TypeError::New(env, std::string(fn) + ": hidden and weight go together");
  if (call.logits.defined()) call.logits = call.logits.to(dtype);
  if (call.hidden.defined()) call.hidden = call.hidden.to(dtype);
  if (call.weight.defined()) call.weight = call.weight.to(dtype);
  call.targets = optional_tensor(o, "targets");
  call.mask = optional_tensor(o, "mask");
  if (!call.targets.defined() || !call.mask.defined())
    throw Napi::TypeError::New(env, std::string(fn) + ": targets and mask are required");
  call.targets = call.targets.to(torch::kInt64);
  call.ref_logps = optional_tensor(o, "refLogps");
  call.cfg = loss_config_from_js(o);
  call.compute_grad = get_bool(o, "computeGrad", true);
  call.max_chunk_bytes = static_cast<int64_t>(get_number(o, "maxChunkBytes", 0));
  return call;
}

Napi::Object output_to_js(Napi::Env env, const FusedHeadOutput& r) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* key, const torch::Tensor& t) {
    if (t.defined()) o.Set(key, tensor_to_js(env, t));
  };
  set("chosenLogps", r.chosen_logps);
  set("rejectedLogps", r.rejected_logps);
  set("chosenRewards", r.chosen_rewards);
  set("rejectedRewards", r.rejected_rewards);
  set("losses", r.losses);
  o.Set("loss", Napi::Number::New(env, r.loss.item<double>()));
  set("chosenLogitsSum", r.chosen_logits_sum);
  set("rejectedLogitsSum", r.rejected_logits_sum);
  set("chosenTokens", r.chosen_tokens);
  set("rejectedTokens", r.rejected_tokens);
  set("dhidden", r.dhidden);
  set("dweight", r.dweight);
  set("dlogits", r.dlogits);
  o.Set("bcoRunningMean", Napi::Number::New(env, r.bco_running_mean));
  o.Set("bcoRunningCount", Napi::Number::New(env, r.bco_running_count));
  return o;
}

// dpoLoss(options) -> Promise<result>: the fused kernel (logits form or chunked head form).
Napi::Value DpoLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    LossCall call = loss_call_from_js(info, "dpoLoss");
    return run_async<FusedHeadOutput>(
        env,
        [call]() {
          if (call.logits.defined())
            return fused_dpo_loss(call.logits, call.targets, call.mask, call.ref_logps, call.cfg,
                                  call.compute_grad);
          return fused_dpo_head(call.hidden, call.weight, call.targets, call.mask, call.ref_logps,
                                call.cfg, call.compute_grad, call.max_chunk_bytes);
        },
        [](Napi::Env env, FusedHeadOutput& r) -> Napi::Value { return output_to_js(env, r); });
  });
}

// dpoLossReference(options) -> Promise<result>: the same from plain libtorch autograd.
Napi::Value DpoLossReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    LossCall call = loss_call_from_js(info, "dpoLossReference");
    return run_async<FusedHeadOutput>(
        env,
        [call]() {
          if (call.logits.defined())
            return reference_dpo_loss(call.logits, call.targets, call.mask, call.ref_logps,
                                      call.cfg, call.compute_grad);
          return reference_dpo_head(call.hidden, call.weight, call.targets, call.mask,
                                    call.ref_logps, call.cfg, call.compute_grad);
        },
        [](Napi::Env env, FusedHeadOutput& r) -> Napi::Value { return output_to_js(env, r); });
  });
}

// sequenceLogps({ hidden, weight, targets, mask, maxChunkBytes, reference }) -> Promise<tensor [R]>.
Napi::Value SequenceLogps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    LossCall call = loss_call_from_js(info, "sequenceLogps");
    if (!call.hidden.defined())
      throw Napi::TypeError::New(env, "sequenceLogps: expected hidden and weight");
    bool reference = get_bool(info[0].As<Napi::Object>(), "reference", false);
    return run_async<torch::Tensor>(
        env,
        [call, reference]() {
          if (reference)
            return reference_sequence_logps(call.hidden, call.weight, call.targets, call.mask);
          return fused_sequence_logps(call.hidden, call.weight, call.targets, call.mask,
                                      call.max_chunk_bytes);
        },
        [](Napi::Env env, torch::Tensor& t) -> Napi::Value { return tensor_to_js(env, t); });
  });
}

struct BenchResult {
  std::vector<double> ms;
  int64_t peak_bytes = 0;
  int64_t chunk_bytes = 0;
};

// benchHead({ pairs, T, V, C, promptTokens, fused, iters, seed }) -> Promise<{ ms[], peakBytes }>:
// forward + backward of the DPO head on random inputs made natively; peakBytes is the CPU
// allocator's peak above what was held before the call (inputs excluded, outputs included).
Napi::Value BenchHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject())
      throw Napi::TypeError::New(env, "benchHead: expected an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    int64_t B = static_cast<int64_t>(get_number(o, "pairs", 1));
    int64_t T = static_cast<int64_t>(get_number(o, "T", 128));
    int64_t V = static_cast<int64_t>(get_number(o, "V", 50257));
    int64_t C = static_cast<int64_t>(get_number(o, "C", 768));
    int64_t prompt = static_cast<int64_t>(get_number(o, "promptTokens", 0));
    int64_t iters = static_cast<int64_t>(get_number(o, "iters", 3));
    int64_t chunk = static_cast<int64_t>(get_number(o, "maxChunkBytes", 0));
    bool fused = get_bool(o, "fused", true);
    uint64_t seed = static_cast<uint64_t>(get_number(o, "seed", 0));
    return run_async<BenchResult>(
        env,
        [=]() {
          // A generator of its own: the benchmark leaves libtorch's global one alone.
          at::Generator gen = at::detail::createCPUGenerator(seed);
          torch::Tensor hidden = torch::randn({2 * B, T, C}, gen);
          torch::Tensor weight = torch::randn({V, C}, gen) * 0.02;
          torch::Tensor targets = torch::randint(V, {2 * B, T}, gen, torch::kInt64);
          torch::Tensor mask = (torch::arange(T) >= prompt).to(torch::kFloat32).expand({2 * B, T}).contiguous();
          torch::Tensor ref = torch::randn({2 * B}, gen) * 10 - 10.8 * (T - prompt);
          DpoLossConfig cfg;
          BenchResult r;
          r.chunk_bytes = chunk > 0 ? chunk : fused_head_auto_chunk_bytes(torch::Device(torch::kCPU));
          for (int64_t i = 0; i < iters; ++i) {
            memory_reset_peak();
            int64_t base = memory_current_bytes();
            auto t0 = std::chrono::steady_clock::now();
            {
              FusedHeadOutput out = fused
                  ? fused_dpo_head(hidden, weight, targets, mask, ref, cfg, true, chunk)
                  : reference_dpo_head(hidden, weight, targets, mask, ref, cfg, true);
            }
            auto t1 = std::chrono::steady_clock::now();
            r.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            r.peak_bytes = std::max(r.peak_bytes, memory_peak_bytes() - base);
          }
          return r;
        },
        [](Napi::Env env, BenchResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          Napi::Array ms = Napi::Array::New(env, r.ms.size());
          for (size_t i = 0; i < r.ms.size(); ++i) ms.Set(i, Napi::Number::New(env, r.ms[i]));
          o.Set("ms", ms);
          o.Set("peakBytes", Napi::Number::New(env, static_cast<double>(r.peak_bytes)));
          o.Set("chunkBytes", Napi::Number::New(env, static_cast<double>(r.chunk_bytes)));
          return o;
        });
  });
}

Napi::Value AutoChunkBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(
                                           fused_head_auto_chunk_bytes(torch::Device(torch::kCPU))));
}

Napi::Value MemoryCurrent(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(memory_current_bytes()));
}

Napi::Value MemoryPeak(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(memory_peak_bytes()));
}

Napi::Value MemoryResetPeak(const Napi::CallbackInfo& info) {
  memory_reset_peak();
  return info.Env().Undefined();
}

}  // namespace

DpoLossConfig loss_config_from_js(const Napi::Object& o) {
  DpoLossConfig c;
  std::string name = get_string(o, "lossType", "sigmoid");
  try {
    c.loss_type = loss_type_from_string(name);
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(o.Env(), e.what());
  }
  c.beta = get_number(o, "beta", c.beta);
  c.label_smoothing = get_number(o, "labelSmoothing", c.label_smoothing);
  c.reference_free = get_bool(o, "referenceFree", c.reference_free);
  c.simpo_gamma = get_number(o, "simpoGamma", c.simpo_gamma);
  c.rpo_alpha = get_number(o, "rpoAlpha", c.rpo_alpha);
  c.discopop_tau = get_number(o, "discopopTau", c.discopop_tau);
  c.bco_running_mean = get_number(o, "bcoRunningMean", c.bco_running_mean);
  c.bco_running_count = get_number(o, "bcoRunningCount", c.bco_running_count);
  return c;
}

void kernel_binding_init(Napi::Env env, Napi::Object exports) {
  memory_stats_install();

  Napi::Object kernel = Napi::Object::New(env);
  std::vector<std::string> names = loss_type_names();
  Napi::Array types = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) types.Set(i, names[i]);
  kernel.Set("lossTypes", types);
  kernel.Set("dpoLoss", Napi::Function::New(env, DpoLoss, "dpoLoss"));
  kernel.Set("dpoLossReference", Napi::Function::New(env, DpoLossReference, "dpoLossReference"));
  kernel.Set("sequenceLogps", Napi::Function::New(env, SequenceLogps, "sequenceLogps"));
  kernel.Set("benchHead", Napi::Function::New(env, BenchHead, "benchHead"));
  kernel.Set("autoChunkBytes", Napi::Function::New(env, AutoChunkBytes, "autoChunkBytes"));
  exports.Set("kernel", kernel);

  Napi::Object memory = Napi::Object::New(env);
  memory.Set("currentBytes", Napi::Function::New(env, MemoryCurrent, "currentBytes"));
  memory.Set("peakBytes", Napi::Function::New(env, MemoryPeak, "peakBytes"));
  memory.Set("resetPeak", Napi::Function::New(env, MemoryResetPeak, "resetPeak"));
  exports.Set("memory", memory);
}

}  // namespace dpo
