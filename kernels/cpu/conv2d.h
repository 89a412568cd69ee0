// 2-D convolution on plain NCHW float tensors through oneDNN (forward, backward data,
// backward weights+bias), with its primitive cache. Weights are PyTorch OIHW:
// (C_out, C_in/groups, KH, KW). Geometry: kernels/common/geometry.h.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "kernels/common/geometry.h"
#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

class OnednnConv {
 public:
  explicit OnednnConv(OnednnContext& ctx);
  ~OnednnConv();
  // dst = conv(src, w) + bias. bias may be null when !has_bias. With `keep`, the reordered input
  // is handed out for backward.
  void forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst,
               ConvSavedInput* keep = nullptr);
  // Both backward passes of one step with diff_dst reordered once for both: diff_src (null to
  // skip) and diff_w / diff_bias (diff_w null to skip). src is the plain input (may be null when
  // `kept` holds it and no kernel of ours needs the plain one: see needs_plain_input).
  void backward(const Conv2dGeometry& g, const float* src, const ConvSavedInput& kept, const float* diff_dst,
                const float* w, float* diff_src, float* diff_w, float* diff_bias);
  // Whether backward still reads the plain input when forward kept `kept`.
  bool needs_plain_input(const Conv2dGeometry& g, const ConvSavedInput& kept);

  struct Prims;  // the primitives of one geometry (conv2d.cpp)

 private:
  Prims& prims_for(const Conv2dGeometry& g);
  OnednnContext& ctx_;
  std::unique_ptr<PrimitiveCache<std::array<int64_t, 19>, Prims>> cache_;
};

}  // namespace lowbit::kernels::cpu
