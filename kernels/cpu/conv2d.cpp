#include "kernels/cpu/conv2d.h"

#include <string>
#include <unordered_map>

#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/depthwise.h"
#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// Primitives for one geometry. The primitives choose their own (blocked) layouts (format
// `any`); user tensors stay plain NCHW/OIHW and are reordered in and out only when the chosen
// layout differs. Backward primitives get the forward descriptor as a hint.
struct OnednnConv::Prims {
  memory::desc src_md, w_md, b_md, dst_md;  // plain user layouts
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
  dnnl::convolution_backward_weights bwd_w;
  bool own_depthwise_bwd_w = false;  // oneDNN chose a gemm kernel for a depthwise conv: use ours
};

namespace {

OnednnConv::Prims make_prims(OnednnContext& ctx, const Conv2dGeometry& g) {
  OnednnConv::Prims p;
  p.src_md = memory::desc({g.n, g.c_in, g.h_in, g.w_in}, dt::f32, tag::nchw);
  p.dst_md = memory::desc({g.n, g.c_out, g.h_out, g.w_out}, dt::f32, tag::nchw);
  memory::dims wdims = g.groups == 1 ? memory::dims{g.c_out, g.c_in, g.kh, g.kw}
                                     : memory::dims{g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw};
  p.w_md = memory::desc(wdims, dt::f32, g.groups == 1 ? tag::oihw : tag::goihw);
  p.b_md = g.has_bias ? memory::desc({g.c_out}, dt::f32, tag::x) : memory::desc();
  memory::desc src_any({g.n, g.c_in, g.h_in, g.w_in}, dt::f32, tag::any);
  memory::desc dst_any({g.n, g.c_out, g.h_out, g.w_out}, dt::f32, tag::any);
  memory::desc w_any(wdims, dt::f32, tag::any);
  memory::dims strides{g.stride_h, g.stride_w};
  memory::dims dil{g.dil_h - 1, g.dil_w - 1};
  memory::dims pl{g.pad_top, g.pad_left}, pr{g.pad_bottom, g.pad_right};
  auto alg = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, alg, src_any, w_any, p.b_md, dst_any, strides,
                                     dil, pl, pr);
  p.fwd_pd = dnnl::convolution_forward::primitive_desc(fd, ctx.engine);
  p.fwd = dnnl::convolution_forward(p.fwd_pd);
  // With very few input channels (not depthwise) the blocked backward-data kernels are pathologically slow
  // (ic = 1: ~25x slower than the forward) and the gemm-based one with a plain diff_src is slow
  // too: conv2d_backward_data uses our direct kernel there (conv_direct.h), and the primitive
  // below is only built for the other shapes.
  if (!use_direct_backward_data(g)) {
    dnnl::convolution_backward_data::desc bd(alg, src_any, w_any, dst_any, strides, dil, pl, pr);
    p.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(bd, ctx.engine, p.fwd_pd);
    p.bwd_data = dnnl::convolution_backward_data(p.bwd_data_pd);
  }
  dnnl::convolution_backward_weights::desc wd(alg, src_any, w_any, p.b_md, dst_any, strides, dil, pl, pr);
  p.bwd_w_pd = dnnl::convolution_backward_weights::primitive_desc(wd, ctx.engine, p.fwd_pd);
  p.bwd_w = dnnl::convolution_backward_weights(p.bwd_w_pd);
  p.own_depthwise_bwd_w = is_depthwise(g) && std::string(p.bwd_w_pd.impl_info_str()).find("gemm") != std::string::npos;
  return p;
}

memory wrap(OnednnContext& ctx, const memory::desc& md, const void* p) {
  return memory(md, ctx.engine, const_cast<void*>(p));
}

// `user` in the layout `want`: itself when equal, else a reordered copy.
memory to_layout(OnednnContext& ctx, memory user, const memory::desc& want) {
  if (user.get_desc() == want) return user;
  memory m(want, ctx.engine);
  dnnl::reorder(user, m).execute(ctx.stream, user, m);
  return m;
}

// A buffer in layout `want` for an output that must end in `user`.
memory out_buffer(OnednnContext& ctx, const memory& user, const memory::desc& want) {
  return user.get_desc() == want ? user : memory(want, ctx.engine);
}

void copy_back(OnednnContext& ctx, memory result, memory user) {
  if (result.get(true) != user.get(true)) dnnl::reorder(result, user).execute(ctx.stream, result, user);
}

}  // namespace

OnednnConv::OnednnConv(OnednnContext& ctx)
    : ctx_(ctx), cache_(std::make_unique<PrimitiveCache<std::array<int64_t, 19>, Prims>>()) {}
OnednnConv::~OnednnConv() = default;

OnednnConv::Prims& OnednnConv::prims_for(const Conv2dGeometry& g) {
  return cache_->get(g.key(), [&] { return make_prims(ctx_, g); });
}

void OnednnConv::forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst,
                         ConvSavedInput* keep) {
  Prims& p = prims_for(g);
  OnednnContext& ctx = ctx_;
  auto& s = ctx.stream;
  memory dst_user = wrap(ctx, p.dst_md, dst);
  memory dst_m = out_buffer(ctx, dst_user, p.fwd_pd.dst_desc());
  memory src_m = to_layout(ctx, wrap(ctx, p.src_md, src), p.fwd_pd.src_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m},
                                       {DNNL_ARG_WEIGHTS, to_layout(ctx, wrap(ctx, p.w_md, w), p.fwd_pd.weights_desc())},
                                       {DNNL_ARG_DST, dst_m}};
  if (g.has_bias) args.emplace(DNNL_ARG_BIAS, wrap(ctx, p.b_md, bias));
  p.fwd.execute(s, args);
  copy_back(ctx, dst_m, dst_user);
  s.wait();
  // Keep the reordered copy when backward-weights (oneDNN's) reads that same layout.
  if (keep && !p.own_depthwise_bwd_w && src_m.get_desc() != p.src_md && src_m.get_desc() == p.bwd_w_pd.src_desc())
    keep->mem = std::make_shared<memory>(std::move(src_m));
}

bool OnednnConv::needs_plain_input(const Conv2dGeometry& g, const ConvSavedInput& kept) {
  return kept.empty() || prims_for(g).own_depthwise_bwd_w;
}

void OnednnConv::backward(const Conv2dGeometry& g, const float* src, const ConvSavedInput& kept, const float* diff_dst,
                          const float* w, float* diff_src, float* diff_w, float* diff_bias) {
  Prims& p = prims_for(g);
  OnednnContext& ctx = ctx_;
  auto& s = ctx.stream;
  const memory dd_user = wrap(ctx, p.dst_md, diff_dst);
  memory dd_data;  // diff_dst in the backward-data layout, reused by backward-weights when equal
  if (diff_src) {
    if (use_direct_backward_data(g)) {
      direct_backward_data(g, diff_dst, w, diff_src);
    } else {
      memory dsrc_user = wrap(ctx, p.src_md, diff_src);
      memory dsrc_m = out_buffer(ctx, dsrc_user, p.bwd_data_pd.diff_src_desc());
      dd_data = to_layout(ctx, dd_user, p.bwd_data_pd.diff_dst_desc());
      p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, dd_data},
                             {DNNL_ARG_WEIGHTS, to_layout(ctx, wrap(ctx, p.w_md, w), p.bwd_data_pd.weights_desc())},
                             {DNNL_ARG_DIFF_SRC, dsrc_m}});
      copy_back(ctx, dsrc_m, dsrc_user);
      s.wait();
    }
  }
  if (!diff_w) return;
  if (p.own_depthwise_bwd_w) return depthwise_backward_weights(g, src, diff_dst, diff_w, diff_bias);
  memory dw_user = wrap(ctx, p.w_md, diff_w);
  memory dw_m = out_buffer(ctx, dw_user, p.bwd_w_pd.diff_weights_desc());
  const memory::desc& want_dd = p.bwd_w_pd.diff_dst_desc();
  memory dd_w = dd_data && dd_data.get_desc() == want_dd ? dd_data : to_layout(ctx, dd_user, want_dd);
  const auto* kept_src = static_cast<const memory*>(kept.mem.get());
  memory src_w = kept_src && kept_src->get_desc() == p.bwd_w_pd.src_desc()
                     ? *kept_src
                     : to_layout(ctx, wrap(ctx, p.src_md, src), p.bwd_w_pd.src_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_w}, {DNNL_ARG_DIFF_DST, dd_w}, {DNNL_ARG_DIFF_WEIGHTS, dw_m}};
  if (g.has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(ctx, p.b_md, diff_bias));
  p.bwd_w.execute(s, args);
  copy_back(ctx, dw_m, dw_user);
  s.wait();
}

}  // namespace lowbit::kernels::cpu
