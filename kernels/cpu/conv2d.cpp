#include "kernels/cpu/conv2d.h"

#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

struct ConvPrims {
  memory::desc src_md, w_md, b_md, dst_md;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
  dnnl::convolution_backward_weights bwd_w;
};

ConvPrims make_prims(const Conv2dGeometry& g) {
  auto& ctx = onednn();
  ConvPrims p;
  p.src_md = memory::desc({g.n, g.c_in, g.h_in, g.w_in}, dt::f32, tag::nchw);
  p.dst_md = memory::desc({g.n, g.c_out, g.h_out, g.w_out}, dt::f32, tag::nchw);
  if (g.groups == 1) {
    p.w_md = memory::desc({g.c_out, g.c_in, g.kh, g.kw}, dt::f32, tag::oihw);
  } else {
    p.w_md = memory::desc({g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw}, dt::f32, tag::goihw);
  }
  p.b_md = g.has_bias ? memory::desc({g.c_out}, dt::f32, tag::x) : memory::desc();
  memory::dims strides{g.stride_h, g.stride_w};
  memory::dims dil{g.dil_h - 1, g.dil_w - 1};
  memory::dims pl{g.pad_top, g.pad_left}, pr{g.pad_bottom, g.pad_right};
  auto alg = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, alg, p.src_md, p.w_md, p.b_md, p.dst_md,
                                     strides, dil, pl, pr);
  p.fwd_pd = dnnl::convolution_forward::primitive_desc(fd, ctx.engine);
  p.fwd = dnnl::convolution_forward(p.fwd_pd);
  dnnl::convolution_backward_data::desc bd(alg, p.src_md, p.w_md, p.dst_md, strides, dil, pl, pr);
  p.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(bd, ctx.engine, p.fwd_pd);
  p.bwd_data = dnnl::convolution_backward_data(p.bwd_data_pd);
  dnnl::convolution_backward_weights::desc wd(alg, p.src_md, p.w_md, p.b_md, p.dst_md, strides, dil, pl, pr);
  p.bwd_w_pd = dnnl::convolution_backward_weights::primitive_desc(wd, ctx.engine, p.fwd_pd);
  p.bwd_w = dnnl::convolution_backward_weights(p.bwd_w_pd);
  return p;
}

ConvPrims& prims_for(const Conv2dGeometry& g) {
  static PrimitiveCache<std::array<int64_t, 19>, ConvPrims> cache;
  return cache.get(g.key(), [&] { return make_prims(g); });
}

memory wrap(const memory::desc& md, const void* p) {
  return memory(md, onednn().engine, const_cast<void*>(p));
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* src, const float* w, const float* bias, float* dst) {
  ConvPrims& p = prims_for(g);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(p.src_md, src)},
                                       {DNNL_ARG_WEIGHTS, wrap(p.w_md, w)},
                                       {DNNL_ARG_DST, wrap(p.dst_md, dst)}};
  if (g.has_bias) args.emplace(DNNL_ARG_BIAS, wrap(p.b_md, bias));
  p.fwd.execute(onednn().stream, args);
  onednn().stream.wait();
}

void conv2d_backward_data(const Conv2dGeometry& g, const float* diff_dst, const float* w, float* diff_src) {
  ConvPrims& p = prims_for(g);
  p.bwd_data.execute(onednn().stream, {{DNNL_ARG_DIFF_DST, wrap(p.dst_md, diff_dst)},
                                       {DNNL_ARG_WEIGHTS, wrap(p.w_md, w)},
                                       {DNNL_ARG_DIFF_SRC, wrap(p.src_md, diff_src)}});
  onednn().stream.wait();
}

void conv2d_backward_weights(const Conv2dGeometry& g, const float* src, const float* diff_dst, float* diff_w,
                             float* diff_bias) {
  ConvPrims& p = prims_for(g);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(p.src_md, src)},
                                       {DNNL_ARG_DIFF_DST, wrap(p.dst_md, diff_dst)},
                                       {DNNL_ARG_DIFF_WEIGHTS, wrap(p.w_md, diff_w)}};
  if (g.has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(p.b_md, diff_bias));
  p.bwd_w.execute(onednn().stream, args);
  onednn().stream.wait();
}

}  // namespace lowbit::kernels::cpu
