#include <cuda_runtime.h>

#include "kernels/common/activation_math.h"
#include "kernels/cuda/activation.h"

namespace lowbit::kernels::cuda {

namespace {

__global__ void fwd_kernel(Act act, const float* x, float* y, int64_t n, float a, float b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    switch (act) {
      case Act::relu: y[i] = relu_fwd(x[i]); break;
      case Act::hardtanh: y[i] = hardtanh_fwd(x[i], a, b); break;
      case Act::leaky_relu: y[i] = leaky_relu_fwd(x[i], a); break;
      case Act::hardswish: y[i] = hardswish_fwd(x[i]); break;
      case Act::tanh: y[i] = tanh_fwd(x[i]); break;
      case Act::sigmoid: y[i] = sigmoid_fwd(x[i]); break;
    }
  }
}

__global__ void bwd_kernel(Act act, const float* s, const float* dy, float* dx, int64_t n, float a, float b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    float d = 0.f;
    switch (act) {
      case Act::relu: d = relu_bwd_from_y(s[i]); break;
      case Act::hardtanh: d = hardtanh_bwd_from_x(s[i], a, b); break;
      case Act::leaky_relu: d = leaky_relu_bwd_from_x(s[i], a); break;
      case Act::hardswish: d = hardswish_bwd_from_x(s[i]); break;
      case Act::tanh: d = tanh_bwd_from_y(s[i]); break;
      case Act::sigmoid: d = sigmoid_bwd_from_y(s[i]); break;
    }
    dx[i] = dy[i] * d;
  }
}

unsigned blocks_for(int64_t n) {
  int64_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

}  // namespace

int activation_forward(Act act, const float* x, float* y, int64_t n, float a, float b, void* stream) {
  fwd_kernel<<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(act, x, y, n, a, b);
  return static_cast<int>(cudaGetLastError());
}

int activation_backward(Act act, const float* saved, const float* dy, float* dx, int64_t n, float a, float b,
                        void* stream) {
  bwd_kernel<<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(act, saved, dy, dx, n, a, b);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace lowbit::kernels::cuda
