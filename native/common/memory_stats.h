// Bytes held by libtorch's CPU allocator, now and at peak: a counting allocator installed over
// the default one when the addon loads (libtorch's CPU allocator keeps no peak of its own).
#pragma once

#include <cstdint>

namespace dpo {

// Installs the counting allocator (idempotent). Tensors allocated before keep their own deleter.
void memory_stats_install();

int64_t memory_current_bytes();
int64_t memory_peak_bytes();
// Sets the peak to the current figure, so that the next peak measures one piece of work.
void memory_reset_peak();

}  // namespace dpo
