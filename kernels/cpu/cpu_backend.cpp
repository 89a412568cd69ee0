#include "kernels/cpu/cpu_backend.h"

#include "kernels/cpu/activation.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/onednn_context.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/pool.h"

namespace lowbit::kernels::cpu {

namespace {

class CpuConv final : public ConvKernels {
 public:
  explicit CpuConv(OnednnContext& ctx) : onednn_(ctx) {}
  bool supports(const Conv2dGeometry&) const override { return true; }
  void forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst,
               ConvSavedInput* keep) override {
    onednn_.forward(g, src, w, bias, dst, keep);
  }
  bool needs_plain_input(const Conv2dGeometry& g, const ConvSavedInput& kept) const override {
    return onednn_.needs_plain_input(g, kept);
  }
  void backward(const Conv2dGeometry& g, const float* src, const ConvSavedInput& kept, const float* diff_dst,
                const float* w, float* diff_src, float* diff_w, float* diff_bias) override {
    onednn_.backward(g, src, kept, diff_dst, w, diff_src, diff_w, diff_bias);
  }

 private:
  mutable OnednnConv onednn_;  // its primitive cache fills on first use of a geometry
};

class CpuMatmul final : public MatmulKernels {
 public:
  explicit CpuMatmul(OnednnContext& ctx) : onednn_(ctx) {}
  void matmul(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b, bool trans_b,
              const float* bias, float* c) override {
    onednn_.matmul(m, n, k, a, trans_a, b, trans_b, bias, c);
  }

 private:
  OnednnMatmul onednn_;
};

class CpuPool final : public PoolKernels {
 public:
  bool supports(const Pool2dGeometry&) const override { return true; }
  void max_forward(const Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) override {
    max_pool_forward(g, x, y, argmax);
  }
  void max_backward(const Pool2dGeometry& g, const int32_t* argmax, const float* dy, float* dx) override {
    max_pool_backward(g, argmax, dy, dx);
  }
  void avg_forward(const Pool2dGeometry& g, const float* x, float* y) override { avg_pool_forward(g, x, y); }
  void avg_backward(const Pool2dGeometry& g, const float* dy, float* dx) override { avg_pool_backward(g, dy, dx); }
  void global_avg_forward(int64_t nc, int64_t hw, const float* x, float* y) override {
    global_avg_pool_forward(nc, hw, x, y);
  }
  void global_avg_backward(int64_t nc, int64_t hw, const float* dy, float* dx) override {
    global_avg_pool_backward(nc, hw, dy, dx);
  }
};

class CpuNorm final : public NormKernels {
 public:
  void batch_norm_statistics(const BatchNormGeometry& g, const float* x, float eps, float momentum, float* mean,
                             float* invstd, float* running_mean, float* running_var) override {
    cpu::batch_norm_statistics(g, x, eps, momentum, mean, invstd, running_mean, running_var);
  }
  void batch_norm_eval_statistics(int64_t c, float eps, const float* running_mean, const float* running_var,
                                  float* mean, float* invstd) override {
    cpu::batch_norm_eval_statistics(c, eps, running_mean, running_var, mean, invstd);
  }
  void batch_norm_apply(const BatchNormGeometry& g, const float* x, const float* mean, const float* invstd,
                        const float* gamma, const float* beta, float* y) override {
    cpu::batch_norm_apply(g, x, mean, invstd, gamma, beta, y);
  }
  void batch_norm_backward(const BatchNormGeometry& g, bool training, const float* x, const float* dy,
                           const float* mean, const float* invstd, const float* gamma, float* dx, float* dgamma,
                           float* dbeta) override {
    cpu::batch_norm_backward(g, training, x, dy, mean, invstd, gamma, dx, dgamma, dbeta);
  }
};

class CpuActivation final : public ActivationKernels {
 public:
  void forward(const ActivationParams& a, const float* x, float* y, int64_t n) override {
    activation_forward(a, x, y, n);
  }
  void backward(const ActivationParams& a, const float* saved, const float* dy, float* dx, int64_t n) override {
    activation_backward(a, saved, dy, dx, n);
  }
};

class CpuElementwise final : public ElementwiseKernels {
 public:
  void add(const float* a, const float* b, float* y, int64_t n) override { cpu::add(a, b, y, n); }
  void scale(const float* x, float s, float* y, int64_t n) override { cpu::scale(x, s, y, n); }
  double sum(const float* x, int64_t n) override { return cpu::sum(x, n); }
  void fill(float* y, float v, int64_t n) override { cpu::fill(y, v, n); }
  void mul(const float* x, const float* m, float* y, int64_t n) override { cpu::mul(x, m, y, n); }
  void column_sums(const float* x, int64_t rows, int64_t cols, float* y) override { cpu::column_sums(x, rows, cols, y); }
};

class CpuLoss final : public LossKernels {
 public:
  double cross_entropy_forward(const float* logits, const int32_t* labels, int64_t n, int64_t c,
                               float* probs) override {
    return cpu::cross_entropy_forward(logits, labels, n, c, probs);
  }
  void cross_entropy_backward(const float* probs, const int32_t* labels, int64_t n, int64_t c, float scale,
                              float* dx) override {
    cpu::cross_entropy_backward(probs, labels, n, c, scale, dx);
  }
};

class CpuFakeQuant final : public FakeQuantKernels {
 public:
  void forward(const FakeQuantGeometry& g, const FakeQuantElem& e, const float* x, const float* scale,
               const float* zero_point, float* y) override {
    fake_quant_forward(g, e, x, scale, zero_point, y);
  }
  void backward(const FakeQuantGeometry& g, const FakeQuantElem& e, bool ste_clamp, bool inside_scale_grad,
                const float* x, const float* scale, const float* zero_point, const float* dy, float* dx,
                double* dscale) override {
    fake_quant_backward(g, e, ste_clamp, inside_scale_grad, x, scale, zero_point, dy, dx, dscale);
  }
};

class CpuOptimizer final : public OptimizerKernels {
 public:
  void sgd_step(const SgdStep& s, float* p, const float* grad, float* buf, bool first, int64_t n) override {
    cpu::sgd_step(s, p, grad, buf, first, n);
  }
  void adam_step(const AdamStep& s, float* p, const float* grad, float* exp_avg, float* exp_avg_sq,
                 float* max_exp_avg_sq, int64_t n) override {
    cpu::adam_step(s, p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, n);
  }
  void scale(float* p, float f, int64_t n) override { scale_in_place(p, f, n); }
};

class CpuBackend final : public Backend {
 public:
  CpuBackend() : conv_(onednn_), matmul_(onednn_) {}
  Device device() const override { return Device::cpu; }
  ConvKernels& conv() override { return conv_; }
  MatmulKernels& matmul() override { return matmul_; }
  PoolKernels& pool() override { return pool_; }
  NormKernels& norm() override { return norm_; }
  ActivationKernels& activation() override { return activation_; }
  ElementwiseKernels& elementwise() override { return elementwise_; }
  LossKernels& loss() override { return loss_; }
  FakeQuantKernels& fake_quant() override { return fake_quant_; }
  OptimizerKernels& optimizer() override { return optimizer_; }

 private:
  OnednnContext onednn_;  // engine and stream, shared by the convolution and matmul caches
  CpuConv conv_;
  CpuMatmul matmul_;
  CpuPool pool_;
  CpuNorm norm_;
  CpuActivation activation_;
  CpuElementwise elementwise_;
  CpuLoss loss_;
  CpuFakeQuant fake_quant_;
  CpuOptimizer optimizer_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace lowbit::kernels::cpu
