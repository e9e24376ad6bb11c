// JS functions over the fused log-prob / DPO loss kernel and the chunked LM head.
#pragma once

#include <napi.h>

#include "kernel/dpo_loss_math.h"

namespace dpo {

// The loss options of a JS object ({ lossType, beta, labelSmoothing, referenceFree, simpoGamma,
// rpoAlpha, discopopTau, bcoRunningMean, bcoRunningCount }), TRL's names in camelCase.
DpoLossConfig loss_config_from_js(const Napi::Object& o);

void kernel_binding_init(Napi::Env env, Napi::Object exports);

}  // namespace dpo
