#include "nn/layers.h"

#include <cmath>

namespace lowbit::nn {

static Tensor uniform_init(const Shape& s, float bound, Rng& rng) {
  Tensor t = Tensor::empty(s);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(-bound, bound);
  return t;
}

ops::Conv2dOptions Conv2dOptions::op() const {
  ops::Conv2dOptions o;
  o.stride_h = stride_h; o.stride_w = stride_w;
  o.pad_h = pad_h; o.pad_w = pad_w; o.pad_same = pad_same;
  o.dil_h = dil_h; o.dil_w = dil_w;
  o.groups = groups;
  return o;
}

Conv2d::Conv2d(const Conv2dOptions& o, Rng& rng) : o_(o) {
  LB_CHECK(o.in_channels > 0 && o.out_channels > 0, "conv2d: channels must be positive (in ", o.in_channels, ", out ",
           o.out_channels, ")");
  LB_CHECK(o.groups > 0 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, "conv2d: groups=", o.groups,
           " must divide in_channels=", o.in_channels, " and out_channels=", o.out_channels);
  LB_CHECK(o.kernel_h > 0 && o.kernel_w > 0 && o.stride_h > 0 && o.stride_w > 0 && o.dil_h > 0 && o.dil_w > 0 &&
               o.pad_h >= 0 && o.pad_w >= 0,
           "conv2d: kernel, stride and dilation must be positive and padding non-negative");
  const int64_t fan_in = o.in_channels / o.groups * o.kernel_h * o.kernel_w;
  const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  weight_ = register_parameter("weight", uniform_init({o.out_channels, o.in_channels / o.groups, o.kernel_h, o.kernel_w}, bound, rng));
  if (o.bias) bias_ = register_parameter("bias", uniform_init({o.out_channels}, bound, rng));
}

Variable Conv2d::forward(const Variable& x) { return ops::conv2d(x, weight_, bias_, o_.op()); }

Shape Conv2d::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() == 4, "conv2d expects a (N, C, H, W) input, got ", s.str());
  LB_CHECK(s[1] == o_.in_channels, "conv2d: input ", s.str(), " has ", s[1], " channels but the layer expects ",
           o_.in_channels, " (weight ", Shape({o_.out_channels, o_.in_channels / o_.groups, o_.kernel_h, o_.kernel_w}).str(), ")");
  return {s[0], o_.out_channels, ops::conv_out_size(s[2], o_.kernel_h, o_.stride_h, o_.pad_h, o_.dil_h, o_.pad_same),
          ops::conv_out_size(s[3], o_.kernel_w, o_.stride_w, o_.pad_w, o_.dil_w, o_.pad_same)};
}

Linear::Linear(const LinearOptions& o, Rng& rng) : o_(o) {
  LB_CHECK(o.in_features > 0 && o.out_features > 0, "linear: features must be positive (in ", o.in_features, ", out ",
           o.out_features, ")");
  const float bound = 1.f / std::sqrt(static_cast<float>(o.in_features));
  weight_ = register_parameter("weight", uniform_init({o.out_features, o.in_features}, bound, rng));
  if (o.bias) bias_ = register_parameter("bias", uniform_init({o.out_features}, bound, rng));
}

Variable Linear::forward(const Variable& x) { return ops::linear(x, weight_, bias_); }

Shape Linear::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() == 2, "linear expects a (N, features) input, got ", s.str(), ": add a flatten layer before it");
  LB_CHECK(s[1] == o_.in_features, "linear: input ", s.str(), " has ", s[1], " features but the layer expects ",
           o_.in_features, " (weight ", Shape({o_.out_features, o_.in_features}).str(), ")");
  return {s[0], o_.out_features};
}

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& o, bool one_d) : o_(o), one_d_(one_d) {
  LB_CHECK(o.num_features > 0, "batch_norm2d: num_features must be positive, got ", o.num_features);
  LB_CHECK(o.eps > 0 && o.momentum >= 0 && o.momentum <= 1, "batch_norm2d: eps must be > 0 and momentum in [0, 1]");
  if (o.affine) {
    gamma_ = register_parameter("weight", Tensor::full({o.num_features}, 1.f));
    beta_ = register_parameter("bias", Tensor::zeros({o.num_features}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({o.num_features}));
  running_var_ = register_buffer("running_var", Tensor::full({o.num_features}, 1.f));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({1}, DType::s32));
}

Variable BatchNorm2d::forward(const Variable& x) {
  if (training_) num_batches_tracked_->data<int32_t>()[0] += 1;
  if (one_d_) {
    LB_CHECK(x.shape().rank() == 2, "batch_norm1d expects a (N, features) input, got ", x.shape().str());
    Variable y = ops::batch_norm2d(ops::reshape(x, {x.size(0), x.size(1), 1, 1}), gamma_, beta_, *running_mean_,
                                   *running_var_, training_, o_.momentum, o_.eps);
    return ops::reshape(y, x.shape());
  }
  return ops::batch_norm2d(x, gamma_, beta_, *running_mean_, *running_var_, training_, o_.momentum, o_.eps);
}

Shape BatchNorm2d::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() == (one_d_ ? 2u : 4u), type_name(), " expects a ", one_d_ ? "(N, features)" : "(N, C, H, W)",
           " input, got ", s.str());
  LB_CHECK(s[1] == o_.num_features, type_name(), ": input ", s.str(), " has ", s[1], " channels but the layer has ",
           o_.num_features, " features");
  return s;
}

Variable Activation::forward(const Variable& x) {
  switch (o_.kind) {
    case ActivationKind::relu: return ops::relu(x);
    case ActivationKind::relu6: return ops::relu6(x);
    case ActivationKind::hardtanh: return ops::hardtanh(x, o_.min_val, o_.max_val);
    case ActivationKind::leaky_relu: return ops::leaky_relu(x, o_.negative_slope);
    case ActivationKind::hardswish: return ops::hardswish(x);
    case ActivationKind::tanh: return ops::tanh(x);
    case ActivationKind::sigmoid: return ops::sigmoid(x);
    case ActivationKind::identity: return x;
  }
  return x;
}

LayerKind Activation::kind() const {
  switch (o_.kind) {
    case ActivationKind::relu: return LayerKind::relu;
    case ActivationKind::relu6: return LayerKind::relu6;
    case ActivationKind::hardtanh: return LayerKind::hardtanh;
    case ActivationKind::leaky_relu: return LayerKind::leaky_relu;
    case ActivationKind::hardswish: return LayerKind::hardswish;
    case ActivationKind::tanh: return LayerKind::tanh;
    case ActivationKind::sigmoid: return LayerKind::sigmoid;
    case ActivationKind::identity: return LayerKind::identity;
  }
  LB_FAIL("activation: unknown kind ", static_cast<int>(o_.kind));
}

Variable Pool2d::forward(const Variable& x) {
  switch (kind_) {
    case PoolKind::max: return ops::max_pool2d(x, o_);
    case PoolKind::avg: return ops::avg_pool2d(x, o_);
    case PoolKind::global_avg: return ops::global_avg_pool2d(x);
  }
  return x;
}

Shape Pool2d::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() == 4, type_name(), " expects a (N, C, H, W) input, got ", s.str());
  if (kind_ == PoolKind::global_avg) return {s[0], s[1], 1, 1};
  return {s[0], s[1], ops::conv_out_size(s[2], o_.kernel_h, o_.stride_h, o_.pad_h, 1, false),
          ops::conv_out_size(s[3], o_.kernel_w, o_.stride_w, o_.pad_w, 1, false)};
}

LayerKind Pool2d::kind() const {
  switch (kind_) {
    case PoolKind::max: return LayerKind::max_pool2d;
    case PoolKind::avg: return LayerKind::avg_pool2d;
    case PoolKind::global_avg: return LayerKind::global_avg_pool2d;
  }
  LB_FAIL("pool: unknown kind ", static_cast<int>(kind_));
}

Shape Flatten::infer_shape(const std::vector<Shape>& in) const {
  const Shape& s = in.at(0);
  LB_CHECK(s.rank() >= 2, "flatten expects at least (N, features), got ", s.str());
  int64_t f = 1;
  for (size_t i = 1; i < s.rank(); ++i) f *= s[i];
  return {s[0], f};
}

Variable Add::forward_multi(const std::vector<Variable>& xs) {
  LB_CHECK(xs.size() >= 2, "add takes at least two inputs, got ", xs.size());
  Variable acc = ops::add(xs[0], xs[1]);
  for (size_t i = 2; i < xs.size(); ++i) acc = ops::add(acc, xs[i]);
  return acc;
}

Shape Add::infer_shape(const std::vector<Shape>& in) const {
  LB_CHECK(in.size() >= 2, "add takes at least two inputs, got ", in.size());
  for (size_t i = 1; i < in.size(); ++i)
    LB_CHECK(in[i] == in[0], "add: input shapes ", in[0].str(), " and ", in[i].str(), " differ");
  return in[0];
}

Shape Concat::infer_shape(const std::vector<Shape>& in) const {
  LB_CHECK(in.size() >= 2, "concat takes at least two inputs, got ", in.size());
  std::vector<int64_t> d = in[0].dims();
  LB_CHECK(d.size() >= 2, "concat: inputs need a channel dimension, got ", in[0].str());
  for (size_t i = 1; i < in.size(); ++i) {
    bool ok = in[i].rank() == in[0].rank() && in[i][0] == in[0][0];
    for (size_t k = 2; ok && k < d.size(); ++k) ok = in[i][k] == in[0][k];
    LB_CHECK(ok, "concat: input ", in[i].str(), " does not match ", in[0].str(), " outside the channel dimension");
    d[1] += in[i][1];
  }
  return Shape(d);
}

}  // namespace lowbit::nn
