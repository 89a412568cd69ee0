// 2-D convolution on plain NCHW float tensors through oneDNN (forward, backward data,
// backward weights+bias). Weights are PyTorch OIHW: (C_out, C_in/groups, KH, KW).
#pragma once
#include <array>
#include <cstdint>

namespace lowbit::kernels::cpu {

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

// dst = conv(src, w) + bias. bias may be null when !has_bias.
void conv2d_forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst);
// diff_src = conv_transpose(diff_dst, w). Overwrites diff_src.
void conv2d_backward_data(const Conv2dGeometry& g, const float* diff_dst, const float* w, float* diff_src);
// diff_w (and diff_bias when non-null) from src and diff_dst. Overwrites both.
void conv2d_backward_weights(const Conv2dGeometry& g, const float* src, const float* diff_dst, float* diff_w,
                             float* diff_bias);

}  // namespace lowbit::kernels::cpu
