// The backend seam (kernels/backend.h): ops reach their kernels through the backend of the
// tensor's device, a backend that does not support a problem is refused with the problem named,
// and a device without a backend is an error that names it.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "ops/ops.h"
#include "util/gradcheck.h"

namespace {

using lowbit::Device;
using lowbit::Rng;
using lowbit::Variable;
namespace kernels = lowbit::kernels;
namespace ops = lowbit::ops;

// The CPU backend with its pooling family wrapped: counts calls, and can refuse every problem.
class CountingPool final : public kernels::PoolKernels {
 public:
  explicit CountingPool(kernels::PoolKernels& inner) : inner_(inner) {}
  bool supports(const kernels::Pool2dGeometry& g) const override { return !refuse && inner_.supports(g); }
  void max_forward(const kernels::Pool2dGeometry& g, const float* x, float* y, int32_t* arg) override {
    ++calls;
    inner_.max_forward(g, x, y, arg);
  }
  void max_backward(const kernels::Pool2dGeometry& g, const int32_t* arg, const float* dy, float* dx) override {
    ++calls;
    inner_.max_backward(g, arg, dy, dx);
  }
  void avg_forward(const kernels::Pool2dGeometry& g, const float* x, float* y) override { inner_.avg_forward(g, x, y); }
  void avg_backward(const kernels::Pool2dGeometry& g, const float* dy, float* dx) override {
    inner_.avg_backward(g, dy, dx);
  }
  void global_avg_forward(int64_t nc, int64_t hw, const float* x, float* y) override {
    inner_.global_avg_forward(nc, hw, x, y);
  }
  void global_avg_backward(int64_t nc, int64_t hw, const float* dy, float* dx) override {
    inner_.global_avg_backward(nc, hw, dy, dx);
  }
  int calls = 0;
  bool refuse = false;

 private:
  kernels::PoolKernels& inner_;
};

class CountingBackend final : public kernels::Backend {
 public:
  CountingBackend() : cpu_(kernels::cpu::make_cpu_backend()), pool_(cpu_->pool()) {}
  Device device() const override { return Device::cpu; }
  kernels::ConvKernels& conv() override { return cpu_->conv(); }
  kernels::MatmulKernels& matmul() override { return cpu_->matmul(); }
  kernels::PoolKernels& pool() override { return pool_; }
  kernels::NormKernels& norm() override { return cpu_->norm(); }
  kernels::ActivationKernels& activation() override { return cpu_->activation(); }
  kernels::ElementwiseKernels& elementwise() override { return cpu_->elementwise(); }
  kernels::LossKernels& loss() override { return cpu_->loss(); }
  kernels::FakeQuantKernels& fake_quant() override { return cpu_->fake_quant(); }
  kernels::OptimizerKernels& optimizer() override { return cpu_->optimizer(); }
  CountingPool& counting_pool() { return pool_; }

 private:
  std::unique_ptr<kernels::Backend> cpu_;
  CountingPool pool_;
};

// Puts a fresh CPU backend back when a test ends.
struct RestoreCpuBackend {
  ~RestoreCpuBackend() { kernels::register_backend(kernels::cpu::make_cpu_backend()); }
};

ops::Pool2dOptions pool2x2() {
  ops::Pool2dOptions o;
  o.kernel_h = o.kernel_w = o.stride_h = o.stride_w = 2;
  return o;
}

TEST(Backend, OpsDispatchToTheBackendOfTheTensorsDevice) {
  RestoreCpuBackend restore;
  auto counting = std::make_unique<CountingBackend>();
  CountingPool& pool = counting->counting_pool();
  kernels::register_backend(std::move(counting));
  Rng rng(1);
  Variable x(lowbit::testing::random_tensor({2, 3, 4, 4}, rng), true);
  Variable y = ops::max_pool2d(x, pool2x2());
  EXPECT_EQ(pool.calls, 1);
  ops::sum(y).backward();
  EXPECT_EQ(pool.calls, 2);
  EXPECT_TRUE(x.grad().defined());
}

TEST(Backend, AProblemTheBackendDoesNotSupportIsRefusedWithItsGeometry) {
  RestoreCpuBackend restore;
  auto counting = std::make_unique<CountingBackend>();
  counting->counting_pool().refuse = true;
  kernels::register_backend(std::move(counting));
  Rng rng(2);
  Variable x(lowbit::testing::random_tensor({1, 2, 4, 4}, rng));
  try {
    ops::max_pool2d(x, pool2x2());
    FAIL() << "expected an error";
  } catch (const lowbit::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("max_pool2d: the cpu backend does not support this pooling (2x2 kernel, stride 2x2)"),
              std::string::npos)
        << msg;
  }
}

TEST(Backend, ADeviceWithoutABackendIsNamed) {
  try {
    kernels::backend_for(Device::cuda);
    GTEST_SKIP() << "this build registered a CUDA backend";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no cuda backend in this build"), std::string::npos) << e.what();
  }
}

}  // namespace
