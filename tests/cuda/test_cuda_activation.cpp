// CUDA activation kernels against the CPU ops. Skips when the build has no CUDA or the machine
// has no GPU (the CPU side of the shared math is covered by tests/ops).
#include <gtest/gtest.h>

#include "ops/ops.h"
#include "util/gradcheck.h"

#ifdef LOWBIT_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/activation.h"
#endif

using namespace lowbit;

TEST(CudaActivation, MatchesCpu) {
#ifndef LOWBIT_HAVE_CUDA
  GTEST_SKIP() << "built without CUDA (nvcc not found or LOWBIT_CUDA=OFF)";
#else
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) GTEST_SKIP() << "no CUDA GPU on this machine";
  namespace kc = kernels::cuda;
  Rng rng(3);
  const int64_t n = 10007;
  Tensor x = lowbit::testing::random_tensor({n}, rng, -3.f, 3.f);
  Tensor dy = lowbit::testing::random_tensor({n}, rng);
  using lowbit::kernels::Activation;
  struct Case { lowbit::kernels::ActivationParams act; std::function<Variable(const Variable&)> cpu; };
  std::vector<Case> cases{
      {{Activation::relu}, [](const Variable& v) { return ops::relu(v); }},
      {{Activation::hardtanh, -1, 1}, [](const Variable& v) { return ops::hardtanh(v, -1, 1); }},
      {{Activation::leaky_relu, 0.1f}, [](const Variable& v) { return ops::leaky_relu(v, 0.1f); }},
      {{Activation::hardswish}, [](const Variable& v) { return ops::hardswish(v); }},
      {{Activation::tanh}, [](const Variable& v) { return ops::tanh(v); }},
      {{Activation::sigmoid}, [](const Variable& v) { return ops::sigmoid(v); }}};
  float *dx_d, *dy_d, *y_d, *g_d;
  ASSERT_EQ(cudaMalloc(&dx_d, n * 4), cudaSuccess);
  cudaMalloc(&dy_d, n * 4);
  cudaMalloc(&y_d, n * 4);
  cudaMalloc(&g_d, n * 4);
  for (const Case& c : cases) {
    Variable xv(x.clone(), true);
    Variable y = c.cpu(xv);
    y.backward(dy);
    cudaMemcpy(dx_d, x.f32(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dy_d, dy.f32(), n * 4, cudaMemcpyHostToDevice);
    ASSERT_EQ(kc::activation_forward(c.act, dx_d, y_d, n, nullptr), 0);
    ASSERT_EQ(kc::activation_backward(c.act, lowbit::kernels::saves_output(c.act.kind) ? y_d : dx_d, dy_d, g_d, n, nullptr), 0);
    Tensor y_gpu = Tensor::empty({n}), g_gpu = Tensor::empty({n});
    cudaMemcpy(y_gpu.f32(), y_d, n * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(g_gpu.f32(), g_d, n * 4, cudaMemcpyDeviceToHost);
    EXPECT_LE(lowbit::testing::max_rel_diff(y_gpu, y.data()), 1e-6f);
    EXPECT_LE(lowbit::testing::max_rel_diff(g_gpu, xv.grad()), 1e-6f);
  }
  cudaFree(dx_d); cudaFree(dy_d); cudaFree(y_d); cudaFree(g_d);
#endif
}
