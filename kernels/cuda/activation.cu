#include <cuda_runtime.h>

#include "kernels/common/activation_math.h"
#include "kernels/cuda/activation.h"

namespace lowbit::kernels::cuda {

namespace {

__global__ void fwd_kernel(ActivationParams act, const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = activation_fwd(act, x[i]);
}

__global__ void bwd_kernel(ActivationParams act, const float* s, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    dx[i] = dy[i] * activation_bwd(act, s[i]);
}

unsigned blocks_for(int64_t n) {
  int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

}  // namespace

int activation_forward(const ActivationParams& act, const float* x, float* y, int64_t n, void* stream) {
  fwd_kernel<<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(act, x, y, n);
  return static_cast<int>(cudaGetLastError());
}

int activation_backward(const ActivationParams& act, const float* saved, const float* dy, float* dx, int64_t n,
                        void* stream) {
  bwd_kernel<<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(act, saved, dy, dx, n);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace lowbit::kernels::cuda
