// JS functions for training steps: dpoBackward and sequenceLogps.
#pragma once

#include <napi.h>

namespace dpo {

void train_binding_init(Napi::Env env, Napi::Object exports);

}  // namespace dpo
