// JS functions over the fused log-prob / DPO loss kernel and the chunked LM head.
#pragma once

#include <napi.h>

namespace dpo {

void kernel_binding_init(Napi::Env env, Napi::Object exports);

}  // namespace dpo
