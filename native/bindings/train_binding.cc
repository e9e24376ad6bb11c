// dpoBackward(policy, batch, refLogps, cfg, options) and sequenceLogps(model, batch) for JS.
// A batch is { inputIds: Int32Array [rows * T], completionMask: Uint8Array, rows, T }.
#include "bindings/train_binding.h"

#include <cstring>
#include <mutex>

#include "bindings/kernel_binding.h"
#include "bindings/model_binding.h"
#include "common/async.h"
#include "common/tensor_js.h"
#include "train/dpo_step.h"

namespace dpo {

namespace {

PairBatch batch_from_js(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject())
    throw Napi::TypeError::New(env, "expected a batch { inputIds, completionMask, rows, T }");
  Napi::Object o = value.As<Napi::Object>();
  double rows = get_number(o, "rows", -1), T = get_number(o, "T", -1);
  if (!(rows >= 1) || !(T >= 1))
    throw Napi::TypeError::New(env, "batch: rows and T must be positive integers");
  std::vector<int64_t> shape{static_cast<int64_t>(rows), static_cast<int64_t>(T)};
  PairBatch batch;
  batch.ids = ids_from_js(o.Get("inputIds"), shape, "batch.inputIds");
  batch.mask = tensor_from_typed_array(o.Get("completionMask"), shape, "batch.completionMask");
  return batch;
}

Napi::Float32Array floats_to_js(Napi::Env env, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  Napi::Float32Array arr = Napi::Float32Array::New(env, c.numel());
  std::memcpy(arr.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return arr;
}

// TRL's logits/chosen: the mean logit over completion tokens and the vocabulary.
double mean_logit(const torch::Tensor& sum, const torch::Tensor& tokens, int64_t V) {
  double n = tokens.sum().item<double>() * static_cast<double>(V);
  return n > 0 ? sum.sum().item<double>() / n : 0.0;
}

// dpoBackward(policy, batch, refLogps | null, cfg, { train, scale, computeGrad, head })
Napi::Value DpoBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto policy = ModelWrap::ModelFrom(info[0], "dpoBackward");
  PairBatch batch = batch_from_js(info[1]);
  torch::Tensor ref;
  if (info[2].IsTypedArray())
    ref = tensor_from_typed_array(info[2], {batch.ids.size(0)}, "refLogps").to(torch::kFloat32);
  Napi::Object cfg_js = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  Napi::Object opt_js = info[4].IsObject() ? info[4].As<Napi::Object>() : Napi::Object::New(env);
  DpoLossConfig cfg;
  DpoStepOptions opts;
  guard(env, [&] {
    cfg = loss_config_from_js(cfg_js);
    validate_loss_config(cfg);
    return env.Undefined();
  });
  if (!ref.defined() && !cfg.reference_free)
    throw Napi::TypeError::New(env, "dpoBackward: refLogps [2B] are required unless referenceFree");
  opts.train = get_bool(opt_js, "train", true);
  opts.compute_grad = get_bool(opt_js, "computeGrad", true);
  opts.scale = get_number(opt_js, "scale", 1.0);
  std::string head = get_string(opt_js, "head", "fused");
  if (head != "fused" && head != "reference")
    throw Napi::TypeError::New(env, "dpoBackward: expected head 'fused' or 'reference', got '" + head + "'");
  opts.reference_head = head == "reference";
  const int64_t V = policy->config().vocab_size;
  return run_async<FusedHeadOutput>(
      env,
      [policy, batch, ref, cfg, opts] {
        std::lock_guard<std::mutex> lock(policy->mutex());
        return dpo_step(*policy, batch, ref, cfg, opts);
      },
      [V](Napi::Env env, FusedHeadOutput& out) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("loss", out.loss.item<double>());
        o.Set("losses", floats_to_js(env, out.losses));
        o.Set("chosenLogps", floats_to_js(env, out.chosen_logps));
        o.Set("rejectedLogps", floats_to_js(env, out.rejected_logps));
        o.Set("chosenRewards", floats_to_js(env, out.chosen_rewards));
        o.Set("rejectedRewards", floats_to_js(env, out.rejected_rewards));
        o.Set("chosenLogitsMean", mean_logit(out.chosen_logits_sum, out.chosen_tokens, V));
        o.Set("rejectedLogitsMean", mean_logit(out.rejected_logits_sum, out.rejected_tokens, V));
        // bco_pair's running mean of the rewards, for the caller to pass into the next step.
        o.Set("bcoRunningMean", out.bco_running_mean);
        o.Set("bcoRunningCount", out.bco_running_count);
        return o;
      });
}

// sequenceLogps(model, batch): Promise<Float32Array [rows]>
Napi::Value SequenceLogps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = ModelWrap::ModelFrom(info[0], "sequenceLogps");
  PairBatch batch = batch_from_js(info[1]);
  return run_async<torch::Tensor>(
      env,
      [model, batch] {
        std::lock_guard<std::mutex> lock(model->mutex());
        return sequence_logps(*model, batch);
      },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value { return floats_to_js(env, out); });
}

}  // namespace

void train_binding_init(Napi::Env env, Napi::Object exports) {
  exports.Set("dpoBackward", Napi::Function::New(env, DpoBackward, "dpoBackward"));
  exports.Set("sequenceLogps", Napi::Function::New(env, SequenceLogps, "sequenceLogps"));
}

}  // namespace dpo
