// Kernel functions for JS (filled in by the fused-kernel work).
#include "bindings/kernel_binding.h"

namespace dpo {

void kernel_binding_init(Napi::Env, Napi::Object) {}

}  // namespace dpo
