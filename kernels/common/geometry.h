// Problem descriptions shared by every backend (kernels/backend.h): plain structs of sizes and
// scalars, no device memory. Tensor layouts are given at each struct.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

namespace lowbit::kernels {

// 2-D convolution on NCHW tensors; weights PyTorch OIHW: (C_out, C_in/groups, KH, KW).
struct Conv2dGeometry {
  int64_t n, c_in, h_in, w_in;    // input (N, C_in, H, W)
  int64_t c_out, kh, kw;          // weights (C_out, C_in/groups, KH, KW)
  int64_t h_out, w_out;           // output (N, C_out, H_out, W_out)
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left, pad_bottom, pad_right;
  int64_t dil_h, dil_w;           // PyTorch convention: 1 = no dilation
  int64_t groups;
  bool has_bias;
  auto key() const {
    return std::array<int64_t, 19>{n, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, stride_h, stride_w,
                                   pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w, groups, has_bias};
  }
};

// The forward's input already in the layout the backward-weights kernel reads, kept by the op
// from forward to backward so the input is not converted a second time. Empty when that layout
// is the plain one: the backward then takes the plain input. Owned by the backend that made it.
struct ConvSavedInput {
  std::shared_ptr<void> mem;
  bool empty() const { return mem == nullptr; }
};

// Max / average pooling of x (N, C, H, W) -> (N, C, H_out, W_out) with symmetric zero padding.
struct Pool2dGeometry {
  int64_t n, c, h, w, h_out, w_out;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  bool count_include_pad;  // average pool: padded positions count in the divisor (PyTorch default)
};

// Batch norm of x (N, C, HW) contiguous: N rows of C*HW values, column j in channel j / HW.
struct BatchNormGeometry {
  int64_t n, c, hw;
};

// Fake quantization of n contiguous values; the scale/zero point of element i is index
// (i / inner) % channels (per tensor: channels = 1; weights (C_out, ...): channels = C_out,
// inner = n / C_out; activations (N, C, H, W): channels = C, inner = H * W).
struct FakeQuantGeometry {
  int64_t n = 0, channels = 1, inner = 1;
};

// One SGD update's scalars as float32 (torch.optim.SGD 1.13).
struct SgdStep {
  float neg_lr, weight_decay, momentum, keep;  // keep = 1 - dampening
  bool decay, nesterov;
};

// One Adam update's scalars as float32 (torch.optim.Adam/AdamW 1.13).
struct AdamStep {
  float b1, one_m_b1, b2, one_m_b2, neg_step, bias2_sqrt, eps, wd;
  bool l2;  // Adam's weight decay folded into the gradient (not AdamW)
};

}  // namespace lowbit::kernels
