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
      "native/bindings/kernel_binding.cc",
      "native/bindings/train_binding.cc",
      "native/train/dpo_step.cc",
      "native/common/memory_stats.cc",
      "native/kernel/logprob_cpu.cc",
      "native/kernel/fused_head.cc",
      "native/kernel/reference.cc"
    ],
    "dpo_cuda_kernel_sources": [
      "native/kernel/logprob_cuda.cu"
    ],
    "dpo_cuda_torch_sources": [
      "native/kernel/fused_head_cuda.cc"
    ],
    "dpo_cuda_test_sources": [
      "test/cuda/dpo_loss_test.cu"
    ]
  }
}
