// 2-D convolution on plain NCHW float tensors through oneDNN (forward, backward data,
// backward weights+bias). Weights are PyTorch OIHW: (C_out, C_in/groups, KH, KW).
#pragma once
#include <array>
#include <cstdint>
#include <memory>

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

// The forward's input already in the (blocked) layout the backward-weights kernel reads, kept
// by the op from forward to backward so the input is not reordered a second time. Empty when
// that layout is the plain one (or our own kernel runs): the backward then takes the plain input.
struct ConvSavedInput {
  std::shared_ptr<void> mem;  // a dnnl::memory owning its buffer
  bool empty() const { return mem == nullptr; }
};

// dst = conv(src, w) + bias. bias may be null when !has_bias. With `keep`, the reordered input
// is handed out for conv2d_backward.
void conv2d_forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst,
                    ConvSavedInput* keep = nullptr);
// Both backward passes of one step with diff_dst reordered once for both: diff_src (null to
// skip) and diff_w / diff_bias (diff_w null to skip). src is the plain input (may be null when
// `kept` holds it and no kernel of ours needs the plain one: see needs_plain_input).
void conv2d_backward(const Conv2dGeometry& g, const float* src, const ConvSavedInput& kept, const float* diff_dst,
                     const float* w, float* diff_src, float* diff_w, float* diff_bias);
// Whether conv2d_backward still reads the plain input when conv2d_forward kept `kept`.
bool needs_plain_input(const Conv2dGeometry& g, const ConvSavedInput& kept);
}  // namespace lowbit::kernels::cpu
