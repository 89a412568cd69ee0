#include "kernels/cpu/matmul.h"

#include <array>

#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

using dnnl::memory;
using dt = dnnl::memory::data_type;

struct OnednnMatmul::Prim {
  memory::desc a_md, b_md, bias_md, c_md;
  dnnl::matmul prim;
};

namespace {

OnednnMatmul::Prim make_prim(OnednnContext& ctx, int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool has_bias) {
  OnednnMatmul::Prim p;
  // Strides describe the transposed storage without copying.
  p.a_md = memory::desc({m, k}, dt::f32, ta ? memory::dims{1, m} : memory::dims{k, 1});
  p.b_md = memory::desc({k, n}, dt::f32, tb ? memory::dims{1, k} : memory::dims{n, 1});
  p.c_md = memory::desc({m, n}, dt::f32, memory::dims{n, 1});
  if (has_bias) p.bias_md = memory::desc({1, n}, dt::f32, memory::dims{n, 1});
  dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(p.a_md, p.b_md, p.bias_md, p.c_md)
                                  : dnnl::matmul::desc(p.a_md, p.b_md, p.c_md);
  p.prim = dnnl::matmul(dnnl::matmul::primitive_desc(d, ctx.engine));
  return p;
}

}  // namespace

OnednnMatmul::OnednnMatmul(OnednnContext& ctx)
    : ctx_(ctx), cache_(std::make_unique<PrimitiveCache<std::array<int64_t, 6>, Prim>>()) {}
OnednnMatmul::~OnednnMatmul() = default;

void OnednnMatmul::matmul(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b, bool trans_b,
                          const float* bias, float* c) {
  const bool has_bias = bias != nullptr;
  Prim& p = cache_->get({m, n, k, trans_a, trans_b, has_bias},
                        [&] { return make_prim(ctx_, m, n, k, trans_a, trans_b, has_bias); });
  OnednnContext& ctx = ctx_;
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(p.a_md, ctx.engine, const_cast<float*>(a))},
                                       {DNNL_ARG_WEIGHTS, memory(p.b_md, ctx.engine, const_cast<float*>(b))},
                                       {DNNL_ARG_DST, memory(p.c_md, ctx.engine, c)}};
  if (has_bias) args.emplace(DNNL_ARG_BIAS, memory(p.bias_md, ctx.engine, const_cast<float*>(bias)));
  p.prim.execute(ctx.stream, args);
  ctx.stream.wait();
}

}  // namespace lowbit::kernels::cpu
