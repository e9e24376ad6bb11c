// The node-dpo addon: registers each native area's functions and classes on the module.
#include <napi.h>
#include <torch/version.h>

#include <thread>

#include "bindings/kernel_binding.h"
#include "bindings/model_binding.h"
#include "bindings/train_binding.h"
#include "common/async.h"
#include "common/runtime.h"

namespace dpo {

namespace {

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "setThreads: expected a positive integer");
  set_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), get_threads());
}

Napi::Object BuildInfo(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
#ifdef DPO_WITH_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  o.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
  std::string blas = blas_library();
  o.Set("blas", blas);
  o.Set("blasIsReference", blas_is_reference(blas));
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Every core by default, for ATen and the BLAS alike; setThreads overrides.
  unsigned cores = std::thread::hardware_concurrency();
  set_threads(cores > 0 ? static_cast<int>(cores) : 1);

  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("buildInfo", BuildInfo(env));
  ModelWrap::Init(env, exports);
  AdamWWrap::Init(env, exports);
  kernel_binding_init(env, exports);
  train_binding_init(env, exports);
  return exports;
}

}  // namespace dpo

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return dpo::Init(env, exports);
}

NODE_API_MODULE(dpo_native, InitAddon)
