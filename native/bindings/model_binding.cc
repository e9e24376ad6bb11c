// Model and AdamW for JS. Heavy calls return promises and run on the libuv pool, holding the
// model's mutex so that two calls never touch its parameters at once.
#include "bindings/model_binding.h"

#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/async.h"
#include "common/tensor_js.h"
#include "io/checkpoint.h"
#include "model/generate.h"

namespace dpo {

namespace {

Napi::FunctionReference* model_constructor = nullptr;

int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback) {
  double v = get_number(o, key, static_cast<double>(fallback));
  if (v != static_cast<double>(static_cast<int64_t>(v)))
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be an integer");
  return static_cast<int64_t>(v);
}

GPT2Config config_from_js(const Napi::Object& o) {
  GPT2Config c;
  c.n_layer = get_int(o, "n_layer", c.n_layer);
  c.n_head = get_int(o, "n_head", c.n_head);
  c.n_embd = get_int(o, "n_embd", c.n_embd);
  c.n_positions = get_int(o, "n_positions", c.n_positions);
  c.vocab_size = get_int(o, "vocab_size", c.vocab_size);
  c.layer_norm_epsilon = get_number(o, "layer_norm_epsilon", c.layer_norm_epsilon);
  c.embd_pdrop = get_number(o, "embd_pdrop", c.embd_pdrop);
  c.attn_pdrop = get_number(o, "attn_pdrop", c.attn_pdrop);
  c.resid_pdrop = get_number(o, "resid_pdrop", c.resid_pdrop);
  c.initializer_range = get_number(o, "initializer_range", c.initializer_range);
  c.tie_word_embeddings = get_bool(o, "tie_word_embeddings", c.tie_word_embeddings);
  return c;
}

std::vector<int64_t> batch_shape(const Napi::Value& v) {
  std::vector<int64_t> shape = shape_from_js(v, "shape");
  if (shape.size() != 2)
    throw Napi::RangeError::New(v.Env(), "expected shape [B, T] for the token ids");
  return shape;
}

// Synchronous calls run on the JS thread: waiting there for a running step would freeze the
// event loop (and Ctrl-C), so a busy model is an error instead.
std::unique_lock<std::mutex> lock_now(GPT2& model, Napi::Env env, const char* what) {
  std::unique_lock<std::mutex> lock(model.mutex(), std::try_to_lock);
  if (!lock.owns_lock())
    throw Napi::Error::New(env, std::string(what) + ": the model is busy with a running forward, "
                                "step, load or save; await it first");
  return lock;
}

// The string argument i (a path), or a TypeError naming the call.
std::string path_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + ": expected a file path");
  return info[i].As<Napi::String>().Utf8Value();
}

// Runs `work` on the thread pool under the model's lock; the promise resolves to undefined.
Napi::Promise run_locked(Napi::Env env, std::shared_ptr<GPT2> model, std::function<void()> work) {
  return run_async<bool>(
      env,
      [model, work] {
        std::lock_guard<std::mutex> lock(model->mutex());
        work();
        return true;
      },
      [](Napi::Env env, bool&) { return env.Undefined(); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Model

void ModelWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "Model",
      {InstanceMethod("config", &ModelWrap::Config),
       InstanceMethod("numParameters", &ModelWrap::NumParameters),
       InstanceMethod("parameterNames", &ModelWrap::ParameterNames),
       InstanceMethod("getParameter", &ModelWrap::GetParameter),
       InstanceMethod("getGradient", &ModelWrap::GetGradient),
       InstanceMethod("loadWeights", &ModelWrap::LoadWeights),
       InstanceMethod("saveWeights", &ModelWrap::SaveWeights),
       InstanceMethod("copyWeightsFrom", &ModelWrap::CopyWeightsFrom),
       InstanceMethod("mixWeightsFrom", &ModelWrap::MixWeightsFrom),
       InstanceMethod("setRequiresGrad", &ModelWrap::SetRequiresGrad),
       InstanceMethod("forward", &ModelWrap::Forward),
       InstanceMethod("sftBackward", &ModelWrap::SftBackward),
       InstanceMethod("generate", &ModelWrap::Generate),
       InstanceMethod("getRngState", &ModelWrap::GetRngState),
       InstanceMethod("setRngState", &ModelWrap::SetRngState)});
  model_constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  exports.Set("Model", cls);
}

// new Model(config, seed): a freshly initialised GPT-2.
ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, "Model: expected a config object");
  GPT2Config cfg = config_from_js(info[0].As<Napi::Object>());
  double seed = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  guard(env, [&] {
    model_ = std::make_shared<GPT2>(cfg, static_cast<uint64_t>(seed));
    return env.Undefined();
  });
}

std::shared_ptr<GPT2> ModelWrap::ModelFrom(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(model_constructor->Value()))
    throw Napi::TypeError::New(value.Env(), std::string(what) + ": expected a native Model");
  return ModelWrap::Unwrap(value.As<Napi::Object>())->model_;
}

Napi::Value ModelWrap::Config(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const GPT2Config& c = model_->config();
  Napi::Object o = Napi::Object::New(env);
  o.Set("n_layer", c.n_layer);
  o.Set("n_head", c.n_head);
  o.Set("n_embd", c.n_embd);
  o.Set("n_positions", c.n_positions);
  o.Set("vocab_size", c.vocab_size);
  o.Set("layer_norm_epsilon", c.layer_norm_epsilon);
  o.Set("embd_pdrop", c.embd_pdrop);
  o.Set("attn_pdrop", c.attn_pdrop);
  o.Set("resid_pdrop", c.resid_pdrop);
  o.Set("initializer_range", c.initializer_range);
  o.Set("tie_word_embeddings", c.tie_word_embeddings);
  return o;
}

Napi::Value ModelWrap::NumParameters(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  for (const auto& p : model_->parameters()) n += p.numel();
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value ModelWrap::ParameterNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto named = model_->named_parameters();
  Napi::Array names = Napi::Array::New(env, named.size());
  uint32_t i = 0;
  for (const auto& item : named) names.Set(i++, item.key());
  return names;
}

static torch::Tensor find_parameter(GPT2& model, const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "expected a parameter name");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  auto named = model.named_parameters();
  const torch::Tensor* p = named.find(name);
  if (!p) throw Napi::Error::New(info.Env(), "no parameter named " + name);
  return *p;
}

Napi::Value ModelWrap::GetParameter(const Napi::CallbackInfo& info) {
  auto lock = lock_now(*model_, info.Env(), "getParameter");
  return tensor_to_js(info.Env(), find_parameter(*model_, info));
}

Napi::Value ModelWrap::GetGradient(const Napi::CallbackInfo& info) {
  auto lock = lock_now(*model_, info.Env(), "getGradient");
  torch::Tensor grad = find_parameter(*model_, info).grad();
  if (!grad.defined()) return info.Env().Null();
  return tensor_to_js(info.Env(), grad);
}

// loadWeights(files: string[]): Promise<void>
Napi::Value ModelWrap::LoadWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "loadWeights: expected an array of safetensors paths");
  std::vector<std::string> files;
  Napi::Array arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) files.push_back(arr.Get(i).ToString().Utf8Value());
  auto model = model_;
  return run_locked(env, model, [model, files] { checkpoint_load(*model, files); });
}

// saveWeights(path, dtype = 'float32'): Promise<void>
Napi::Value ModelWrap::SaveWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = path_arg(info, 0, "saveWeights");
  std::string dtype = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value()
                                                               : "float32";
  auto model = model_;
  return run_locked(env, model, [model, path, dtype] { checkpoint_save(*model, path, dtype); });
}

// copyWeightsFrom(other: Model): copies every parameter (same config required).
Napi::Value ModelWrap::CopyWeightsFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto other = ModelFrom(info[0], "copyWeightsFrom");
  if (other == model_) return env.Undefined();
  return guard(env, [&] {
    auto lock = lock_now(*model_, env, "copyWeightsFrom");
    auto other_lock = lock_now(*other, env, "copyWeightsFrom (source)");
    auto dst = model_->named_parameters();
    auto src = other->named_parameters();
    TORCH_CHECK(dst.size() == src.size(), "copyWeightsFrom: the models have different layouts");
    torch::NoGradGuard no_grad;
    for (const auto& item : dst) {
      const torch::Tensor* s = src.find(item.key());
      TORCH_CHECK(s && s->sizes() == item.value().sizes(), "copyWeightsFrom: parameter ",
                  item.key(), " differs in shape between the models");
      item.value().copy_(*s);
    }
    return env.Undefined();
  });
}

// mixWeightsFrom(other, alpha): Promise<void>; this = alpha * other + (1 - alpha) * this, parameter
// by parameter (TR-DPO's soft reference update, Gorbatovski et al. 2024).
Napi::Value ModelWrap::MixWeightsFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto other = ModelFrom(info[0], "mixWeightsFrom");
  if (info.Length() < 2 || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "mixWeightsFrom: expected alpha, a number in [0, 1]");
  double alpha = info[1].As<Napi::Number>().DoubleValue();
  if (!(alpha >= 0 && alpha <= 1))
    throw Napi::RangeError::New(env, "mixWeightsFrom: expected alpha in [0, 1], got " + std::to_string(alpha));
  if (other == model_) throw Napi::Error::New(env, "mixWeightsFrom: a model cannot mix with itself");
  auto model = model_;
  return run_async<bool>(
      env,
      [model, other, alpha] {
        std::scoped_lock lock(model->mutex(), other->mutex());
        auto dst = model->named_parameters();
        auto src = other->named_parameters();
        TORCH_CHECK(dst.size() == src.size(), "mixWeightsFrom: the models have different layouts");
        torch::NoGradGuard no_grad;
        for (const auto& item : dst) {
          const torch::Tensor* s = src.find(item.key());
          TORCH_CHECK(s && s->sizes() == item.value().sizes(), "mixWeightsFrom: parameter ",
                      item.key(), " differs in shape between the models");
          item.value().lerp_(*s, alpha);
        }
        return true;
      },
      [](Napi::Env env, bool&) { return env.Undefined(); });
}

Napi::Value ModelWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  bool on = info.Length() > 0 && info[0].ToBoolean().Value();
  auto lock = lock_now(*model_, info.Env(), "setRequiresGrad");
  for (auto& p : model_->parameters()) p.set_requires_grad(on);
  return info.Env().Undefined();
}

// forward(ids: Int32Array, shape: [B, T], { output: 'logits' | 'hidden' }): Promise<Tensor>
// Evaluation only: no dropout, no autograd graph.
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  torch::Tensor ids = ids_from_js(info[0], batch_shape(info[1]), "forward ids");
  Napi::Object opts = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>()
                                                              : Napi::Object::New(env);
  std::string output = get_string(opts, "output", "logits");
  if (output != "logits" && output != "hidden")
    throw Napi::TypeError::New(env, "forward: expected output 'logits' or 'hidden', got '" + output + "'");
  ForwardOutput what = output == "hidden" ? ForwardOutput::kHidden : ForwardOutput::kLogits;
  auto model = model_;
  return run_async<torch::Tensor>(
      env,
      [model, ids, what] {
        std::lock_guard<std::mutex> lock(model->mutex());
        torch::NoGradGuard no_grad;
        bool was_training = model->is_training();
        model->eval();
        torch::Tensor out = model->forward(ids, what);
        if (was_training) model->train();
        return out;
      },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value { return tensor_to_js(env, out); });
}

// sftBackward(ids, shape [B, T], mask: Uint8Array [B, T], { train, scale, computeGrad }):
//   Promise<{ loss, tokens }>
// Next-token cross-entropy averaged over the targets where mask = 1 (mask[b][t] covers the
// prediction of ids[b][t + 1] from position t); gradients are accumulated into .grad, scaled by
// `scale` (1 / gradient-accumulation steps).
Napi::Value ModelWrap::SftBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int64_t> shape = batch_shape(info[1]);
  torch::Tensor ids = ids_from_js(info[0], shape, "sftBackward ids");
  torch::Tensor mask = tensor_from_typed_array(info[2], shape, "sftBackward mask");
  Napi::Object opts = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>()
                                                              : Napi::Object::New(env);
  bool train = get_bool(opts, "train", true);
  bool compute_grad = get_bool(opts, "computeGrad", true);
  double scale = get_number(opts, "scale", 1.0);
  auto model = model_;
  struct Out { double loss; int64_t tokens; };
  return run_async<Out>(
      env,
      [model, ids, mask, train, compute_grad, scale] {
        std::lock_guard<std::mutex> lock(model->mutex());
        model->train(train);
        // Evaluation builds no graph.
        std::optional<torch::NoGradGuard> no_grad;
        if (!compute_grad) no_grad.emplace();
        const int64_t T = ids.size(1);
        // Targets: position t predicts ids[t + 1]; only masked positions get the LM head, so
        // the [tokens x V] logits exist for completion tokens alone.
        torch::Tensor m = mask.narrow(1, 0, T - 1).to(torch::kBool).reshape(-1);
        int64_t tokens = m.sum().item<int64_t>();
        TORCH_CHECK(tokens > 0, "sftBackward: the mask selects no target token");
        torch::Tensor hidden = model->forward(ids, ForwardOutput::kHidden);
        torch::Tensor h = hidden.narrow(1, 0, T - 1).reshape({-1, hidden.size(-1)}).index({m});
        torch::Tensor y = ids.narrow(1, 1, T - 1).reshape(-1).index({m});
        torch::Tensor logits = torch::matmul(h, model->lm_head_weight().t());  // [N, V]
        torch::Tensor loss = torch::cross_entropy_loss(logits, y);
        TORCH_CHECK(std::isfinite(loss.item<double>()), "sftBackward: the loss is not finite (",
                    loss.item<double>(), ")");
        if (compute_grad) (loss * scale).backward();
        return Out{loss.item<double>(), tokens};
      },
      [](Napi::Env env, Out& out) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("loss", out.loss);
        o.Set("tokens", static_cast<double>(out.tokens));
        return o;
      });
}

// generate(prompt: Int32Array, options): Promise<Int32Array> of the new tokens
Napi::Value ModelWrap::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(env, "generate: expected the prompt ids as an Int32Array");
  int64_t n = info[0].As<Napi::TypedArray>().ElementLength();
  torch::Tensor prompt = ids_from_js(info[0], {n}, "generate prompt");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                           : Napi::Object::New(env);
  GenerateOptions opts;
  opts.max_new_tokens = get_int(o, "maxNewTokens", opts.max_new_tokens);
  opts.temperature = get_number(o, "temperature", opts.temperature);
  opts.top_k = get_int(o, "topK", opts.top_k);
  opts.top_p = get_number(o, "topP", opts.top_p);
  opts.eos_token_id = get_int(o, "eosTokenId", opts.eos_token_id);
  opts.seed = static_cast<uint64_t>(get_int(o, "seed", 0));
  opts.use_cache = get_bool(o, "useCache", true);
  std::vector<int64_t> ids(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + n);
  auto model = model_;
  return run_async<std::vector<int64_t>>(
      env,
      [model, ids, opts] {
        std::lock_guard<std::mutex> lock(model->mutex());
        return generate(*model, ids, opts);
      },
      [](Napi::Env env, std::vector<int64_t>& out) -> Napi::Value {
        Napi::Int32Array arr = Napi::Int32Array::New(env, out.size());
        for (size_t i = 0; i < out.size(); ++i) arr[i] = static_cast<int32_t>(out[i]);
        return arr;
      });
}

// getRngState(): Uint8Array, the state of the dropout generator; setRngState restores it.
Napi::Value ModelWrap::GetRngState(const Napi::CallbackInfo& info) {
  auto lock = lock_now(*model_, info.Env(), "getRngState");
  at::Generator& gen = model_->generator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> gen_lock(gen.mutex());
    state = gen.get_state();
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), state.numel());
  std::memcpy(out.Data(), state.data_ptr(), state.numel());
  return out;
}

Napi::Value ModelWrap::SetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(env, "setRngState: expected the Uint8Array from getRngState()");
  int64_t n = info[0].As<Napi::TypedArray>().ElementLength();
  torch::Tensor state = tensor_from_typed_array(info[0], {n}, "setRngState");
  return guard(env, [&] {
    auto lock = lock_now(*model_, info.Env(), "setRngState");
    at::Generator& gen = model_->generator();
    std::lock_guard<std::mutex> gen_lock(gen.mutex());
    gen.set_state(state);
    return env.Undefined();
  });
}

// ---------------------------------------------------------------------------------------------
// AdamW with decoupled weight decay (Loshchilov & Hutter 2019) on matrices and embeddings only;
// biases and layer norms are not decayed, as in Hugging Face's Trainer.

struct AdamWWrap::State {
  std::unique_ptr<torch::optim::AdamW> optim;
  std::vector<torch::Tensor> params;
};

void AdamWWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "AdamW",
                                   {InstanceMethod("step", &AdamWWrap::Step),
                                    InstanceMethod("zeroGrad", &AdamWWrap::ZeroGrad),
                                    InstanceMethod("clipGradNorm", &AdamWWrap::ClipGradNorm),
                                    InstanceMethod("saveState", &AdamWWrap::SaveState),
                                    InstanceMethod("loadState", &AdamWWrap::LoadState)});
  exports.Set("AdamW", cls);
}

// new AdamW(model, { lr, beta1, beta2, eps, weightDecay })
AdamWWrap::AdamWWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AdamWWrap>(info) {
  Napi::Env env = info.Env();
  model_ = ModelWrap::ModelFrom(info[0], "AdamW");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                           : Napi::Object::New(env);
  double lr = get_number(o, "lr", 1e-3);
  double beta1 = get_number(o, "beta1", 0.9), beta2 = get_number(o, "beta2", 0.999);
  double eps = get_number(o, "eps", 1e-8), wd = get_number(o, "weightDecay", 0.0);
  guard(env, [&] {
    state_ = std::make_shared<State>();
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : model_->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    state_->params = model_->parameters();
    auto make = [&](double weight_decay) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(lr).betas({beta1, beta2}).eps(eps).weight_decay(weight_decay));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, make(wd));
    groups.emplace_back(no_decay, make(0.0));
    state_->optim = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
    return env.Undefined();
  });
}

AdamWWrap::~AdamWWrap() = default;

// step(lr): Promise<void>
Napi::Value AdamWWrap::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(env, "step: expected the learning rate");
  double lr = info[0].As<Napi::Number>().DoubleValue();
  auto state = state_;
  return run_locked(env, model_, [state, lr] {
    for (auto& group : state->optim->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    state->optim->step();
  });
}

Napi::Value AdamWWrap::ZeroGrad(const Napi::CallbackInfo& info) {
  auto lock = lock_now(*model_, info.Env(), "zeroGrad");
  for (auto& p : state_->params)
    if (p.grad().defined()) p.grad().zero_();
  return info.Env().Undefined();
}

// clipGradNorm(maxNorm): the total L2 norm of the gradients before clipping; maxNorm <= 0 only
// measures.
Napi::Value AdamWWrap::ClipGradNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double max_norm = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  return guard(env, [&] {
    auto lock = lock_now(*model_, info.Env(), "clipGradNorm");
    double sq = 0;
    for (auto& p : state_->params)
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    double norm = std::sqrt(sq);
    if (max_norm > 0 && norm > max_norm) {
      double factor = max_norm / (norm + 1e-6);
      for (auto& p : state_->params)
        if (p.grad().defined()) p.grad().mul_(factor);
    }
    return Napi::Number::New(env, norm);
  });
}

// saveState(file): Promise<void>; the moments and step counts, written atomically.
Napi::Value AdamWWrap::SaveState(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "saveState");
  auto state = state_;
  return run_locked(info.Env(), model_, [state, path] {
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    torch::save(*state->optim, tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw std::runtime_error(path + ": cannot rename the optimizer state into place");
    }
  });
}

// loadState(file): Promise<void>; the optimizer must belong to a model of the same layout.
Napi::Value AdamWWrap::LoadState(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "loadState");
  auto state = state_;
  return run_locked(info.Env(), model_, [state, path] {
    try {
      torch::load(*state->optim, path);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": cannot read the optimizer state (" +
                               exception_message(e) + ")");
    }
  });
}

}  // namespace dpo
