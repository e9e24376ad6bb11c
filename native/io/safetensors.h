// The safetensors format (8-byte little-endian header length, JSON header, raw tensor bytes):
// a validating, memory-mapped reader and an atomic writer. The file is never trusted: every
// offset, size and dtype is checked before a byte of tensor data is touched.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dpo {

struct SafetensorsEntry {
  std::string dtype;             // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte offsets relative to the start of the data section
};

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates its header; throws std::runtime_error naming the file
  // (and the tensor) on any inconsistency.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  // A tensor viewing the mapped bytes (no copy); valid while this object lives.
  torch::Tensor view(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the data section inside the mapping
};

// Writes tensors (CPU or not; converted to contiguous CPU) to `path` atomically: a temporary
// file in the same folder, flushed, then renamed over `path`.
void safetensors_save(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata);

torch::ScalarType safetensors_dtype(const std::string& dtype);  // throws on unknown names
std::string safetensors_dtype_name(torch::ScalarType dtype);

}  // namespace dpo
