// The backend seam: one interface per op family, on plain device pointers and geometry structs.
// The ops (framework/ops, quant/, optim/) ask backend_for(tensor.device()) for a family, check
// supports() where a backend may cover only part of a family, and call it. kernels/cpu is the
// reference implementation (CpuBackend, kernels/cpu/cpu_backend.h); a CUDA backend registers for
// Device::cuda (register_backend) and is tested against it. Pointers point into the backend's
// device memory; every buffer is contiguous in the layout its comment gives.
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "kernels/common/activation_math.h"
#include "kernels/common/fake_quant_math.h"
#include "kernels/common/geometry.h"

namespace lowbit::kernels {

// x (N, C_in, H, W), w (C_out, C_in/groups, KH, KW), bias (C_out) -> y (N, C_out, H_out, W_out).
class ConvKernels {
 public:
  virtual ~ConvKernels() = default;
  virtual bool supports(const Conv2dGeometry& g) const = 0;
  // dst = conv(src, w) + bias (bias null when !has_bias); with `keep`, the input in the layout
  // the backward reads is handed out so the backward does not convert it again.
  virtual void forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst,
                       ConvSavedInput* keep) = 0;
  // Whether backward still reads the plain input when forward kept `kept`.
  virtual bool needs_plain_input(const Conv2dGeometry& g, const ConvSavedInput& kept) const = 0;
  // diff_src (null: skip), diff_w and diff_bias (diff_w null: skip) in one pass over diff_dst.
  virtual void backward(const Conv2dGeometry& g, const float* src, const ConvSavedInput& kept, const float* diff_dst,
                        const float* w, float* diff_src, float* diff_w, float* diff_bias) = 0;
};

class MatmulKernels {
 public:
  virtual ~MatmulKernels() = default;
  // C(M,N) = op(A)(M,K) * op(B)(K,N) [+ bias(N) over rows]; trans_a: A stored (K,M); trans_b: B
  // stored (N,K); row-major; overwrites C.
  virtual void matmul(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b, bool trans_b,
                      const float* bias, float* c) = 0;
};

// x (N, C, H, W) -> y (N, C, H_out, W_out). Backward kernels overwrite dx.
class PoolKernels {
 public:
  virtual ~PoolKernels() = default;
  virtual bool supports(const Pool2dGeometry& g) const = 0;
  // argmax (N, C, H_out, W_out): flat h*w index of each maximum (the first one; NaN wins).
  virtual void max_forward(const Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) = 0;
  virtual void max_backward(const Pool2dGeometry& g, const int32_t* argmax, const float* dy, float* dx) = 0;
  virtual void avg_forward(const Pool2dGeometry& g, const float* x, float* y) = 0;
  virtual void avg_backward(const Pool2dGeometry& g, const float* dy, float* dx) = 0;
  // nc planes of hw values -> nc means; backward spreads dy / hw over each plane.
  virtual void global_avg_forward(int64_t nc, int64_t hw, const float* x, float* y) = 0;
  virtual void global_avg_backward(int64_t nc, int64_t hw, const float* dy, float* dx) = 0;
};

// Batch norm over x (N, C, HW): per-channel mean and 1/sqrt(var + eps).
class NormKernels {
 public:
  virtual ~NormKernels() = default;
  // Training statistics of x; running_mean / running_var (C) updated with `momentum` (the
  // variance unbiased, as PyTorch).
  virtual void batch_norm_statistics(const BatchNormGeometry& g, const float* x, float eps, float momentum, float* mean,
                                     float* invstd, float* running_mean, float* running_var) = 0;
  // Evaluation: mean = running_mean, invstd = 1 / sqrt(running_var + eps) (C).
  virtual void batch_norm_eval_statistics(int64_t c, float eps, const float* running_mean, const float* running_var,
                                          float* mean, float* invstd) = 0;
  // y = (x - mean) * invstd * gamma + beta; gamma/beta null: 1 and 0.
  virtual void batch_norm_apply(const BatchNormGeometry& g, const float* x, const float* mean, const float* invstd,
                                const float* gamma, const float* beta, float* y) = 0;
  // dx (null: skip), dgamma and dbeta (C; null: skip). training: through the batch statistics.
  virtual void batch_norm_backward(const BatchNormGeometry& g, bool training, const float* x, const float* dy,
                                   const float* mean, const float* invstd, const float* gamma, float* dx, float* dgamma,
                                   float* dbeta) = 0;
};

// Elementwise activations of n values (math: kernels/common/activation_math.h).
class ActivationKernels {
 public:
  virtual ~ActivationKernels() = default;
  virtual void forward(const ActivationParams& a, const float* x, float* y, int64_t n) = 0;
  // dx = dy * act'(saved); saved is x or y as saves_output(a.kind) says.
  virtual void backward(const ActivationParams& a, const float* saved, const float* dy, float* dx, int64_t n) = 0;
};

class ElementwiseKernels {
 public:
  virtual ~ElementwiseKernels() = default;
  virtual void add(const float* a, const float* b, float* y, int64_t n) = 0;  // y = a + b
  virtual void scale(const float* x, float s, float* y, int64_t n) = 0;       // y = x * s
  virtual double sum(const float* x, int64_t n) = 0;                          // in double, fixed order
  virtual void fill(float* y, float v, int64_t n) = 0;
  // y = x * mask (inverted dropout: mask holds 0 or 1/(1-p)).
  virtual void mul(const float* x, const float* mask, float* y, int64_t n) = 0;
  // y (cols) = sum over the rows of x (rows, cols), in float, in row order.
  virtual void column_sums(const float* x, int64_t rows, int64_t cols, float* y) = 0;
};

// Softmax cross-entropy of logits (N, C) with labels (N) in [0, C).
class LossKernels {
 public:
  virtual ~LossKernels() = default;
  // probs (N, C) = softmax(logits); returns the summed loss (double, in row order).
  virtual double cross_entropy_forward(const float* logits, const int32_t* labels, int64_t n, int64_t c,
                                       float* probs) = 0;
  // dx = (probs - onehot(labels)) * scale.
  virtual void cross_entropy_backward(const float* probs, const int32_t* labels, int64_t n, int64_t c, float scale,
                                      float* dx) = 0;
};

// Fused fake quantization (layout and math: kernels/cpu/fake_quant.h, kernels/common/fake_quant_math.h).
class FakeQuantKernels {
 public:
  virtual ~FakeQuantKernels() = default;
  virtual void forward(const FakeQuantGeometry& g, const FakeQuantElem& e, const float* x, const float* scale,
                       const float* zero_point, float* y) = 0;
  virtual void backward(const FakeQuantGeometry& g, const FakeQuantElem& e, bool ste_clamp, bool inside_scale_grad,
                        const float* x, const float* scale, const float* zero_point, const float* dy, float* dx,
                        double* dscale) = 0;
};

// Parameter updates of n values in place (torch.optim 1.13 semantics, scalars as floats).
class OptimizerKernels {
 public:
  virtual ~OptimizerKernels() = default;
  // SGD; buf null: no momentum. first: the momentum buffer starts as the update.
  virtual void sgd_step(const SgdStep& s, float* p, const float* grad, float* buf, bool first, int64_t n) = 0;
  // Adam / AdamW moments and update (bias corrections precomputed in `s`).
  virtual void adam_step(const AdamStep& s, float* p, const float* grad, float* exp_avg, float* exp_avg_sq,
                         float* max_exp_avg_sq, int64_t n) = 0;
  virtual void scale(float* p, float f, int64_t n) = 0;  // p *= f (AdamW's decoupled decay)
};

// All families of one device.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual ConvKernels& conv() = 0;
  virtual MatmulKernels& matmul() = 0;
  virtual PoolKernels& pool() = 0;
  virtual NormKernels& norm() = 0;
  virtual ActivationKernels& activation() = 0;
  virtual ElementwiseKernels& elementwise() = 0;
  virtual LossKernels& loss() = 0;
  virtual FakeQuantKernels& fake_quant() = 0;
  virtual OptimizerKernels& optimizer() = 0;
};

// The backend of a device. The CPU backend always exists; another device's exists once its
// backend registered (a build with CUDA). Throws with the device named when there is none.
Backend& backend_for(Device d);
// Installs (or replaces, e.g. in a test) the backend of b->device(). A replaced backend stays
// alive until exit: an op may still hold a reference to it.
void register_backend(std::unique_ptr<Backend> b);

}  // namespace lowbit::kernels
