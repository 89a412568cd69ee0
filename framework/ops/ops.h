// Differentiable operations on Variables. Each op's forward and backward live side by side in
// the .cpp of its family (conv.cpp, linear.cpp, norm.cpp, activation.cpp, pool.cpp,
// elementwise.cpp, shape.cpp, loss.cpp). All image tensors are NCHW float32.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "core/rng.h"

namespace lowbit::ops {

// ---- conv.cpp ---------------------------------------------------------------------------
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;      // symmetric zero padding (PyTorch `padding=`)
  bool pad_same = false;             // TF "SAME": output = ceil(input / stride), extra pad at bottom/right
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
};
// x (N, C_in, H, W), w (C_out, C_in/groups, KH, KW), b (C_out) or undefined -> (N, C_out, H_out, W_out)
Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const Conv2dOptions& opt);
// Output spatial size for one dimension; throws with the geometry when it is not positive.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, bool same);

// ---- linear.cpp -------------------------------------------------------------------------
// x (N, in), w (out, in), b (out) or undefined -> (N, out)
Variable linear(const Variable& x, const Variable& w, const Variable& b);

// ---- norm.cpp ---------------------------------------------------------------------------
// x (N, C, H, W); gamma, beta (C) (undefined when not affine); running_mean/var (C) buffers,
// updated in place in training mode (var with the unbiased estimator, as PyTorch).
Variable batch_norm2d(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& running_mean,
                      Tensor& running_var, bool training, float momentum, float eps);

// ---- activation.cpp ---------------------------------------------------------------------
Variable relu(const Variable& x);
Variable relu6(const Variable& x);
Variable hardtanh(const Variable& x, float min_val = -1.f, float max_val = 1.f);
Variable leaky_relu(const Variable& x, float negative_slope = 0.01f);
Variable hardswish(const Variable& x);  // x * relu6(x + 3) / 6
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);

// ---- pool.cpp ---------------------------------------------------------------------------
struct Pool2dOptions {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool only (PyTorch default)
};
Variable max_pool2d(const Variable& x, const Pool2dOptions& opt);
Variable avg_pool2d(const Variable& x, const Pool2dOptions& opt);
// (N, C, H, W) -> (N, C, 1, 1)
Variable global_avg_pool2d(const Variable& x);

// ---- elementwise.cpp --------------------------------------------------------------------
Variable add(const Variable& a, const Variable& b);  // same shape
Variable mul_scalar(const Variable& x, float s);
Variable sum(const Variable& x);   // -> (1)
Variable mean(const Variable& x);  // -> (1)
// Inverted dropout: zero with probability p, scale survivors by 1/(1-p). Identity when !training.
Variable dropout(const Variable& x, float p, bool training, Rng& rng);

// ---- shape.cpp --------------------------------------------------------------------------
Variable reshape(const Variable& x, const Shape& shape);
Variable flatten(const Variable& x, int start_dim = 1);
// Concatenate along dim 1 (channels); all other dims must match.
Variable concat_channels(const std::vector<Variable>& xs);

// ---- loss.cpp ---------------------------------------------------------------------------
// logits (N, C), labels s32 (N) with values in [0, C) -> mean softmax cross-entropy, shape (1)
Variable cross_entropy(const Variable& logits, const Tensor& labels);

}  // namespace lowbit::ops
