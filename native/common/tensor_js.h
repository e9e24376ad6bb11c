// Conversions between libtorch tensors and the JS tensor shape of node-dpo:
// { shape: number[], dtype: 'float32' | 'int32' | ..., data: TypedArray }.
#pragma once

#include <napi.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace dpo {

// Reads an Int32Array (or a plain array of integers) into an int64 CPU tensor of `shape`.
// `what` names the argument in error messages.
torch::Tensor ids_from_js(const Napi::Value& value, const std::vector<int64_t>& shape,
                          const std::string& what);

// Reads a numeric typed array into a CPU tensor of `shape`; the dtype follows the array type.
torch::Tensor tensor_from_typed_array(const Napi::Value& value, const std::vector<int64_t>& shape,
                                      const std::string& what);

// Reads a JS tensor object { shape, data } into a CPU tensor.
torch::Tensor tensor_from_js(const Napi::Value& value, const std::string& what);

// Copies a CPU tensor into a new JS tensor object (float32 / int32 / int64 / uint8 data).
Napi::Object tensor_to_js(Napi::Env env, const torch::Tensor& tensor);

std::vector<int64_t> shape_from_js(const Napi::Value& value, const std::string& what);

// Option readers with defaults; a present value of the wrong type throws a TypeError that
// names the option.
double get_number(const Napi::Object& options, const char* key, double fallback);
bool get_bool(const Napi::Object& options, const char* key, bool fallback);
std::string get_string(const Napi::Object& options, const char* key, const std::string& fallback);

}  // namespace dpo
