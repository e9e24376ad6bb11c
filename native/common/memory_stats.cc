// The counting CPU allocator behind native.memory: each block carries its size in a 64-byte
// header (keeping 64-byte alignment), so the deleter needs no table and data == context, as
// raw_allocate requires.
#include "common/memory_stats.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <mutex>

namespace dpo {

namespace {

constexpr size_t kHeader = 64;
std::atomic<int64_t> current_bytes{0};
std::atomic<int64_t> peak_bytes{0};

void note_alloc(int64_t n) {
  int64_t now = current_bytes.fetch_add(n) + n;
  int64_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
}

void counted_free(void* data) {
  if (data == nullptr) return;
  char* base = static_cast<char*>(data) - kHeader;
  current_bytes.fetch_sub(static_cast<int64_t>(*reinterpret_cast<size_t*>(base)));
  c10::free_cpu(base);
}

struct CountingAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) const override {
    char* base = static_cast<char*>(c10::alloc_cpu(n + kHeader));
    *reinterpret_cast<size_t*>(base) = n;
    note_alloc(static_cast<int64_t>(n));
    void* data = base + kHeader;
    return {data, data, &counted_free, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &counted_free; }
};

}  // namespace

void memory_stats_install() {
  static std::once_flag once;
  std::call_once(once, [] {
    static CountingAllocator allocator;
    // Priority above the default registration (0), so a later default registration cannot undo it.
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
}

int64_t memory_current_bytes() { return current_bytes.load(); }
int64_t memory_peak_bytes() { return peak_bytes.load(); }
void memory_reset_peak() { peak_bytes.store(current_bytes.load()); }

}  // namespace dpo
