// Float layers. Constructors take an options struct and an Rng for PyTorch-default init:
// conv/linear weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform(a=sqrt(5))),
// batch norm gamma=1, beta=0, running_mean=0, running_var=1.
#pragma once
#include "nn/module.h"
#include "ops/ops.h"

namespace lowbit::nn {

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_h = 3, kernel_w = 3;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  bool pad_same = false;  // TF "SAME" padding
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  bool bias = true;
  ops::Conv2dOptions op() const;
};

class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& o, Rng& rng);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::conv2d; }
  const Conv2dOptions& options() const { return o_; }
  Variable& weight() { return weight_; }  // (C_out, C_in/groups, KH, KW)
  Variable& bias() { return bias_; }      // (C_out) or undefined

 protected:
  Conv2dOptions o_;
  Variable weight_, bias_;
};

struct LinearOptions {
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
};

class Linear : public Module {
 public:
  Linear(const LinearOptions& o, Rng& rng);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::linear; }
  const LinearOptions& options() const { return o_; }
  Variable& weight() { return weight_; }  // (out, in)
  Variable& bias() { return bias_; }      // (out) or undefined

 protected:
  LinearOptions o_;
  Variable weight_, bias_;
};

struct BatchNorm2dOptions {
  int64_t num_features = 0;
  float eps = 1e-5f;
  float momentum = 0.1f;
  bool affine = true;
};

// Batch norm over channels: (N, C, H, W) as batch_norm2d, or (N, C) as batch_norm1d
// (features of a linear layer; computed as (N, C, 1, 1)).
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& o, bool one_d = false);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return one_d_ ? LayerKind::batch_norm1d : LayerKind::batch_norm2d; }
  bool one_d() const { return one_d_; }
  const BatchNorm2dOptions& options() const { return o_; }

 private:
  BatchNorm2dOptions o_;
  bool one_d_;
  Variable gamma_, beta_;  // (C) each; undefined when !affine
  Tensor* running_mean_;   // (C)
  Tensor* running_var_;    // (C)
  Tensor* num_batches_tracked_;  // (1) s32, PyTorch's counter (kept for import/export)
};

enum class ActivationKind { relu, relu6, hardtanh, leaky_relu, hardswish, tanh, sigmoid, identity };

struct ActivationOptions {
  ActivationKind kind = ActivationKind::relu;
  float min_val = -1.f, max_val = 1.f;  // hardtanh
  float negative_slope = 0.01f;         // leaky_relu
};

class Activation : public Module {
 public:
  explicit Activation(const ActivationOptions& o) : o_(o) {}
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return in.at(0); }
  LayerKind kind() const override;
  const ActivationOptions& options() const { return o_; }

 private:
  ActivationOptions o_;
};

enum class PoolKind { max, avg, global_avg };

class Pool2d : public Module {
 public:
  Pool2d(PoolKind kind, const ops::Pool2dOptions& o) : kind_(kind), o_(o) {}
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override;
  PoolKind pool_kind() const { return kind_; }
  const ops::Pool2dOptions& options() const { return o_; }

 private:
  PoolKind kind_;
  ops::Pool2dOptions o_;
};

class Flatten : public Module {
 public:
  Variable forward(const Variable& x) override { return ops::flatten(x, 1); }
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::flatten; }
};

class Dropout : public Module {
 public:
  Dropout(float p, uint64_t seed) : p_(p), rng_(seed) {}
  Variable forward(const Variable& x) override { return ops::dropout(x, p_, training_, rng_); }
  Shape infer_shape(const std::vector<Shape>& in) const override { return in.at(0); }
  LayerKind kind() const override { return LayerKind::dropout; }
  Rng* rng_state() override { return &rng_; }

 private:
  float p_;
  Rng rng_;
};

// Elementwise sum of >= 2 same-shape inputs (residual connections).
class Add : public Module {
 public:
  Variable forward(const Variable& x) override { return x; }
  Variable forward_multi(const std::vector<Variable>& xs) override;
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::add; }
};

// Channel concatenation of >= 2 inputs.
class Concat : public Module {
 public:
  Variable forward(const Variable& x) override { return x; }
  Variable forward_multi(const std::vector<Variable>& xs) override { return ops::concat_channels(xs); }
  Shape infer_shape(const std::vector<Shape>& in) const override;
  LayerKind kind() const override { return LayerKind::concat; }
};

}  // namespace lowbit::nn
