// Conversions between libtorch tensors and node-dpo's JS tensor objects.
#include "common/tensor_js.h"

#include <cstring>

#include "common/async.h"

namespace dpo {

std::string exception_message(const std::exception& e) {
  if (const auto* err = dynamic_cast<const c10::Error*>(&e)) return err->what_without_backtrace();
  return e.what();
}

static int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

static std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<int64_t> shape_from_js(const Napi::Value& value, const std::string& what) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throw Napi::TypeError::New(env, what + ": shape must be an array");
  Napi::Array arr = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || x != static_cast<double>(static_cast<int64_t>(x)))
      throw Napi::TypeError::New(env, what + ": shape entries must be non-negative integers");
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

torch::Tensor tensor_from_typed_array(const Napi::Value& value, const std::vector<int64_t>& shape,
                                      const std::string& what) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray())
    throw Napi::TypeError::New(env, what + ": expected a typed array (Int32Array, Float32Array...)");
  Napi::TypedArray arr = value.As<Napi::TypedArray>();
  torch::ScalarType dtype;
  switch (arr.TypedArrayType()) {
    case napi_float32_array: dtype = torch::kFloat32; break;
    case napi_float64_array: dtype = torch::kFloat64; break;
    case napi_int32_array: dtype = torch::kInt32; break;
    case napi_uint8_array: dtype = torch::kUInt8; break;
    case napi_int8_array: dtype = torch::kInt8; break;
    case napi_bigint64_array: dtype = torch::kInt64; break;
    default: throw Napi::TypeError::New(env, what + ": unsupported typed array type");
  }
  int64_t n = numel_of(shape);
  if (static_cast<int64_t>(arr.ElementLength()) != n)
    throw Napi::RangeError::New(env, what + ": shape " + shape_string(shape) + " needs " +
                                         std::to_string(n) + " elements, the array has " +
                                         std::to_string(arr.ElementLength()));
  auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  // Copy: the JS buffer may change or be collected while native work runs on another thread.
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (n > 0) std::memcpy(t.data_ptr(), base, arr.ByteLength());
  return t;
}

torch::Tensor ids_from_js(const Napi::Value& value, const std::vector<int64_t>& shape,
                          const std::string& what) {
  Napi::Env env = value.Env();
  if (value.IsArray()) {
    Napi::Array arr = value.As<Napi::Array>();
    if (static_cast<int64_t>(arr.Length()) != numel_of(shape))
      throw Napi::RangeError::New(env, what + ": expected " + std::to_string(numel_of(shape)) +
                                           " ids for shape " + shape_string(shape));
    torch::Tensor t = torch::empty(shape, torch::kInt64);
    auto* p = t.data_ptr<int64_t>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, what + ": ids must be integers");
      p[i] = v.As<Napi::Number>().Int64Value();
    }
    return t;
  }
  torch::Tensor t = tensor_from_typed_array(value, shape, what);
  if (t.is_floating_point())
    throw Napi::TypeError::New(env, what + ": ids must be an Int32Array, got a float array");
  return t.to(torch::kInt64);
}

torch::Tensor tensor_from_js(const Napi::Value& value, const std::string& what) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, what + ": expected { shape, data }");
  Napi::Object obj = value.As<Napi::Object>();
  return tensor_from_typed_array(obj.Get("data"), shape_from_js(obj.Get("shape"), what), what);
}

Napi::Object tensor_to_js(Napi::Env env, const torch::Tensor& tensor) {
  torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  const char* dtype;
  switch (t.scalar_type()) {
    case torch::kFloat32: dtype = "float32"; break;
    case torch::kInt32: dtype = "int32"; break;
    case torch::kInt64: dtype = "int64"; break;
    case torch::kUInt8: dtype = "uint8"; break;
    case torch::kBool: t = t.to(torch::kUInt8); dtype = "uint8"; break;
    default: t = t.to(torch::kFloat32); dtype = "float32"; break;
  }
  size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), t.data_ptr(), bytes);
  Napi::Value data;
  switch (t.scalar_type()) {
    case torch::kFloat32: data = Napi::Float32Array::New(env, t.numel(), buffer, 0); break;
    case torch::kInt32: data = Napi::Int32Array::New(env, t.numel(), buffer, 0); break;
    case torch::kInt64: data = Napi::BigInt64Array::New(env, t.numel(), buffer, 0); break;
    default: data = Napi::Uint8Array::New(env, t.numel(), buffer, 0); break;
  }
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(i, Napi::Number::New(env, t.size(i)));
  Napi::Object out = Napi::Object::New(env);
  out.Set("shape", shape);
  out.Set("dtype", dtype);
  out.Set("data", data);
  return out;
}

double get_number(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber())
    throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool get_bool(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean())
    throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string get_string(const Napi::Object& options, const char* key, const std::string& fallback) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString())
    throw Napi::TypeError::New(options.Env(), std::string("option ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace dpo
