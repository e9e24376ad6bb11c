// Safetensors reading (mmap, validated) and writing (atomic).
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace dpo {

namespace {

// The largest header we accept; real headers are a few hundred kilobytes.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw std::runtime_error(path + ": " + msg);
}

size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

torch::ScalarType safetensors_dtype(const std::string& dtype) {
  if (dtype == "F32") return torch::kFloat32;
  if (dtype == "F16") return torch::kFloat16;
  if (dtype == "BF16") return torch::kBFloat16;
  if (dtype == "F64") return torch::kFloat64;
  if (dtype == "I64") return torch::kInt64;
  if (dtype == "I32") return torch::kInt32;
  if (dtype == "I16") return torch::kInt16;
  if (dtype == "I8") return torch::kInt8;
  if (dtype == "U8") return torch::kUInt8;
  if (dtype == "BOOL") return torch::kBool;
  throw std::runtime_error("safetensors dtype " + dtype + " is not supported");
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat64: return "F64";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw std::runtime_error("cannot write tensors of this dtype to safetensors");
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, "file of " + std::to_string(file_size) +
                   " bytes is too short to be safetensors (needs an 8-byte header length)");
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  map_ = static_cast<const uint8_t*>(map);
  map_size_ = file_size;

  // From here a throw must unmap: the destructor does not run for a throwing constructor.
  try {
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_[i];
    if (header_len > file_size - 8)
      fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                     std::to_string(file_size) + "-byte file (truncated or not safetensors)");
    if (header_len > kMaxHeaderBytes)
      fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
    data_ = map_ + 8 + header_len;
    const uint64_t data_size = file_size - 8 - header_len;

    nlohmann::json header;
    try {
      header = nlohmann::json::parse(map_ + 8, map_ + 8 + header_len);
    } catch (const nlohmann::json::exception& e) {
      fail(path, std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) fail(path, "header is not a JSON object");

    std::vector<std::pair<uint64_t, std::string>> by_offset;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) fail(path, "__metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m)
          if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
        continue;
      }
      const std::string where = "tensor " + name;
      if (!v.is_object()) fail(path, where + ": entry is not an object");
      if (!v.contains("dtype") || !v["dtype"].is_string()) fail(path, where + ": no dtype");
      if (!v.contains("shape") || !v["shape"].is_array()) fail(path, where + ": no shape");
      if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
          v["data_offsets"].size() != 2)
        fail(path, where + ": data_offsets must be [begin, end]");

      SafetensorsEntry e;
      e.dtype = v["dtype"].get<std::string>();
      const size_t elem = dtype_bytes(e.dtype);
      if (elem == 0) fail(path, where + ": unknown dtype " + e.dtype);

      // Byte size from the shape, refusing overflow.
      unsigned __int128 bytes = elem;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) fail(path, where + ": shape entries must be integers >= 0");
        uint64_t dim = d.get<uint64_t>();
        if (dim > (1ull << 48)) fail(path, where + ": shape entry " + std::to_string(dim) + " is absurd");
        e.shape.push_back(static_cast<int64_t>(dim));
        bytes *= dim;
        if (bytes > (static_cast<unsigned __int128>(1) << 64)) fail(path, where + ": shape too large");
      }
      const auto& off = v["data_offsets"];
      if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        fail(path, where + ": data_offsets must be integers >= 0");
      e.begin = off[0].get<uint64_t>();
      e.end = off[1].get<uint64_t>();
      if (e.begin > e.end)
        fail(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " +
                       std::to_string(e.end) + "] are reversed");
      if (e.end > data_size)
        fail(path, where + ": data_offsets end " + std::to_string(e.end) +
                       " is beyond the data section of " + std::to_string(data_size) + " bytes");
      if (static_cast<unsigned __int128>(e.end - e.begin) != bytes)
        fail(path, where + ": shape " + shape_str(e.shape) + " of " + e.dtype + " needs " +
                       std::to_string(static_cast<uint64_t>(bytes)) + " bytes but data_offsets span " +
                       std::to_string(e.end - e.begin));
      if (e.end > e.begin) by_offset.emplace_back(e.begin, name);
      entries_.emplace(name, std::move(e));
    }

    // No two tensors may share bytes.
    std::sort(by_offset.begin(), by_offset.end());
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const auto& prev = entries_.at(by_offset[i - 1].second);
      if (by_offset[i].first < prev.end)
        fail(path, "tensor " + by_offset[i].second + ": data_offsets overlap tensor " +
                       by_offset[i - 1].second);
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

torch::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, "no tensor named " + name);
  const SafetensorsEntry& e = it->second;
  // from_blob never frees; the mapping outlives the view by contract.
  return torch::from_blob(const_cast<uint8_t*>(data_ + e.begin), e.shape,
                          torch::TensorOptions().dtype(safetensors_dtype(e.dtype)));
}

void safetensors_save(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Header: entries in the given order, offsets packed back to back.
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> bodies;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    bodies.push_back(std::move(t));
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data section 8-byte aligned

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(tmp, std::string("cannot create: ") + std::strerror(errno));
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : bodies)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    if (!out) {
      ::unlink(tmp.c_str());
      fail(tmp, "write failed (disk full?)");
    }
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail(path, std::string("cannot rename the temporary file into place: ") + std::strerror(err));
  }
}

}  // namespace dpo
