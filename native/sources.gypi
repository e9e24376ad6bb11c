{
  "variables": {
    "dpo_sources": [
      "native/addon.cc",
      "native/common/tensor_js.cc",
      "native/common/runtime.cc",
      "native/model/gpt2.cc",
      "native/model/generate.cc",
      "native/io/safetensors.cc",
      "native/io/checkpoint.cc",
      "native/bindings/model_binding.cc",
      "native/bindings/kernel_binding.cc"
    ],
    "dpo_cuda_kernel_sources": [],
    "dpo_cuda_torch_sources": [],
    "dpo_cuda_test_sources": []
  }
}
