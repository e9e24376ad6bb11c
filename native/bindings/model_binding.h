// JS classes over the native model and optimizer: Model and AdamW.
#pragma once

#include <napi.h>

#include <memory>

#include "model/gpt2.h"

namespace dpo {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The model behind a JS Model object; throws a TypeError for anything else.
  static std::shared_ptr<GPT2> ModelFrom(const Napi::Value& value, const char* what);

 private:
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value NumParameters(const Napi::CallbackInfo& info);
  Napi::Value ParameterNames(const Napi::CallbackInfo& info);
  Napi::Value GetParameter(const Napi::CallbackInfo& info);
  Napi::Value GetGradient(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
  Napi::Value SaveWeights(const Napi::CallbackInfo& info);
  Napi::Value CopyWeightsFrom(const Napi::CallbackInfo& info);
  Napi::Value MixWeightsFrom(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value SftBackward(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value GetRngState(const Napi::CallbackInfo& info);
  Napi::Value SetRngState(const Napi::CallbackInfo& info);

  std::shared_ptr<GPT2> model_;
};

class AdamWWrap : public Napi::ObjectWrap<AdamWWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit AdamWWrap(const Napi::CallbackInfo& info);
  ~AdamWWrap() override;

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value ClipGradNorm(const Napi::CallbackInfo& info);
  Napi::Value SaveState(const Napi::CallbackInfo& info);
  Napi::Value LoadState(const Napi::CallbackInfo& info);

  std::shared_ptr<GPT2> model_;
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace dpo
