// CUDA-libtorch glue of the fused kernel: checks CUDA tensors and hands their pointers to the
// launchers of logprob_cuda.cu on the current stream; a launch error becomes a c10::Error (so a
// JS Error). Compiled only when libtorch has CUDA (DPO_WITH_CUDA).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include "kernel/logprob.h"
#include "kernel/logprob_cuda.h"

namespace dpo {

namespace {

cuda::LogitsDType logits_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return cuda::LogitsDType::kFloat32;
    case torch::kBFloat16: return cuda::LogitsDType::kBFloat16;
    case torch::kFloat16: return cuda::LogitsDType::kFloat16;
    default:
      TORCH_CHECK(false, "fused kernel (CUDA): logits must be float32, bfloat16 or float16, got ",
                  t.scalar_type());
  }
}

void check_launch(const char* err, const char* pass) {
  TORCH_CHECK(err == nullptr, "fused kernel (CUDA, ", pass, "): ", err);
}

void check_device_args(const torch::Tensor& logits, const torch::Tensor& rows,
                       const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && logits.stride(1) == 1,
              "fused kernel (CUDA): expected logits [M, V] with contiguous rows, got ", logits.sizes());
  TORCH_CHECK(targets.device() == logits.device() && targets.scalar_type() == torch::kInt64 &&
                  targets.is_contiguous(),
              "fused kernel (CUDA): targets must be contiguous int64 on the logits' device");
  TORCH_CHECK(!rows.defined() || (rows.device() == logits.device() &&
                                  rows.scalar_type() == torch::kInt64 && rows.is_contiguous() &&
                                  rows.numel() == targets.numel()),
              "fused kernel (CUDA): rows must be contiguous int64 on the logits' device, one per target");
  TORCH_CHECK(rows.defined() || logits.size(0) == targets.numel(),
              "fused kernel (CUDA): ", targets.numel(), " targets for ", logits.size(0), " logits rows");
}

}  // namespace

void token_logprobs_cuda(const torch::Tensor& logits, const torch::Tensor& rows,
                         const torch::Tensor& targets, torch::Tensor& logp, torch::Tensor& lse,
                         torch::Tensor& logit_sum) {
  check_device_args(logits, rows, targets);
  c10::cuda::CUDAGuard device_guard(logits.device());
  const int64_t N = targets.numel();
  auto f32 = targets.options().dtype(torch::kFloat32);
  logp = torch::empty({N}, f32);
  lse = torch::empty({N}, f32);
  logit_sum = torch::empty({N}, f32);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  check_launch(cuda::logprob_forward(logits.data_ptr(), logits_dtype(logits), logits.stride(0),
                                     logits.size(1), rows.defined() ? rows.data_ptr<int64_t>() : nullptr,
                                     targets.data_ptr<int64_t>(), N, logp.data_ptr<float>(),
                                     lse.data_ptr<float>(), logit_sum.data_ptr<float>(), stream),
               "log-probs");
}

void token_dlogits_cuda(const torch::Tensor& logits, const torch::Tensor& rows,
                        const torch::Tensor& targets, const torch::Tensor& lse,
                        const torch::Tensor& coef, torch::Tensor& dlogits) {
  check_device_args(logits, rows, targets);
  TORCH_CHECK(dlogits.device() == logits.device() && dlogits.sizes() == logits.sizes() &&
                  dlogits.stride(1) == 1 && dlogits.scalar_type() == logits.scalar_type(),
              "fused kernel (CUDA): dlogits must match logits");
  TORCH_CHECK(lse.is_cuda() && coef.is_cuda() && lse.scalar_type() == torch::kFloat32 &&
                  coef.scalar_type() == torch::kFloat32 && lse.is_contiguous() && coef.is_contiguous(),
              "fused kernel (CUDA): lse and coef must be contiguous float32 on the device");
  c10::cuda::CUDAGuard device_guard(logits.device());
  cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  check_launch(cuda::logprob_backward(logits.data_ptr(), dlogits.data_ptr(), logits_dtype(logits),
                                      logits.stride(0), dlogits.stride(0), logits.size(1),
                                      rows.defined() ? rows.data_ptr<int64_t>() : nullptr,
                                      targets.data_ptr<int64_t>(), targets.numel(),
                                      lse.data_ptr<float>(), coef.data_ptr<float>(), stream),
               "dlogits");
}

int64_t cuda_free_bytes(const torch::Device& device) {
  c10::cuda::CUDAGuard device_guard(device);
  size_t free_bytes = 0, total_bytes = 0;
  cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
  TORCH_CHECK(err == cudaSuccess, "fused kernel (CUDA): cudaMemGetInfo failed: ", cudaGetErrorString(err));
  return static_cast<int64_t>(free_bytes);
}

}  // namespace dpo
