#include "kernels/cpu/int8_gemm.h"

#include <cstdlib>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

namespace lowbit::kernels::cpu {

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// One engine and stream for the integer kernels (the training backend has its own).
struct Int8Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Int8Context& context() {
  static Int8Context ctx;
  return ctx;
}

memory reordered(memory user, const memory::desc& want) {
  if (user.get_desc() == want) return user;
  memory m(want, context().engine);
  dnnl::reorder(user, m).execute(context().stream, user, m);
  return m;
}

}  // namespace

bool int8_exact() {
  static const bool exact = [] {
    const char* force = std::getenv("LOWBIT_INT8_REFERENCE");
    if (force && std::strcmp(force, "1") == 0) return false;
    switch (dnnl::get_effective_cpu_isa()) {
      case dnnl::cpu_isa::avx512_core_vnni:
      case dnnl::cpu_isa::avx512_core_bf16:
      case dnnl::cpu_isa::avx512_core_amx:
      case dnnl::cpu_isa::avx2_vnni: return true;
      default: return false;
    }
  }();
  return exact;
}

struct Int8Conv::Impl {
  memory::desc src_user, dst_user;
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  memory weights;  // in the primitive's layout
};

Int8Conv::Int8Conv(const Conv2dGeometry& g, bool src_signed, const int8_t* w) : impl_(std::make_unique<Impl>()) {
  Int8Context& ctx = context();
  const dt src_dt = src_signed ? dt::s8 : dt::u8;
  impl_->src_user = memory::desc({g.n, g.c_in, g.h_in, g.w_in}, src_dt, tag::nchw);
  impl_->dst_user = memory::desc({g.n, g.c_out, g.h_out, g.w_out}, dt::s32, tag::nchw);
  const memory::dims wdims = g.groups == 1 ? memory::dims{g.c_out, g.c_in, g.kh, g.kw}
                                           : memory::dims{g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw};
  const memory::desc w_user(wdims, dt::s8, g.groups == 1 ? tag::oihw : tag::goihw);
  dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      memory::desc({g.n, g.c_in, g.h_in, g.w_in}, src_dt, tag::any), memory::desc(wdims, dt::s8, tag::any),
      memory::desc({g.n, g.c_out, g.h_out, g.w_out}, dt::s32, tag::any), {g.stride_h, g.stride_w},
      {g.dil_h - 1, g.dil_w - 1}, {g.pad_top, g.pad_left}, {g.pad_bottom, g.pad_right});
  impl_->pd = dnnl::convolution_forward::primitive_desc(d, ctx.engine);
  impl_->prim = dnnl::convolution_forward(impl_->pd);
  memory wu(w_user, ctx.engine, const_cast<int8_t*>(w));
  impl_->weights = memory(impl_->pd.weights_desc(), ctx.engine);
  dnnl::reorder(wu, impl_->weights).execute(ctx.stream, wu, impl_->weights);
  ctx.stream.wait();
}

Int8Conv::~Int8Conv() = default;

void Int8Conv::run(const void* src, int32_t* dst) {
  Int8Context& ctx = context();
  memory su(impl_->src_user, ctx.engine, const_cast<void*>(src));
  memory du(impl_->dst_user, ctx.engine, dst);
  memory s = reordered(su, impl_->pd.src_desc());
  memory d = impl_->pd.dst_desc() == impl_->dst_user ? du : memory(impl_->pd.dst_desc(), ctx.engine);
  impl_->prim.execute(ctx.stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, impl_->weights}, {DNNL_ARG_DST, d}});
  if (d.get(true) != du.get(true)) dnnl::reorder(d, du).execute(ctx.stream, d, du);
  ctx.stream.wait();
}

struct Int8Matmul::Impl {
  memory::desc src_md, dst_md;
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory weights;
};

Int8Matmul::Int8Matmul(int64_t n, int64_t k, int64_t o, bool src_signed, const int8_t* w)
    : impl_(std::make_unique<Impl>()) {
  Int8Context& ctx = context();
  impl_->src_md = memory::desc({n, k}, src_signed ? dt::s8 : dt::u8, tag::ab);
  impl_->dst_md = memory::desc({n, o}, dt::s32, tag::ab);
  const memory::desc w_user({k, o}, dt::s8, tag::ba);  // (O, K) row-major is (K, O) column-major
  dnnl::matmul::desc d(impl_->src_md, memory::desc({k, o}, dt::s8, tag::any), impl_->dst_md);
  impl_->pd = dnnl::matmul::primitive_desc(d, ctx.engine);
  impl_->prim = dnnl::matmul(impl_->pd);
  memory wu(w_user, ctx.engine, const_cast<int8_t*>(w));
  impl_->weights = reordered(wu, impl_->pd.weights_desc());
  if (impl_->weights.get(true) == wu.get(true)) {  // keep our own copy: the caller's buffer may go away
    memory own(w_user, ctx.engine);
    std::memcpy(own.get_data_handle(), w, static_cast<size_t>(k * o));
    impl_->weights = own;
  }
  ctx.stream.wait();
}

Int8Matmul::~Int8Matmul() = default;

void Int8Matmul::run(const void* src, int32_t* dst) {
  Int8Context& ctx = context();
  memory s(impl_->src_md, ctx.engine, const_cast<void*>(src));
  memory d(impl_->dst_md, ctx.engine, dst);
  impl_->prim.execute(ctx.stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, impl_->weights}, {DNNL_ARG_DST, d}});
  ctx.stream.wait();
}

}  // namespace lowbit::kernels::cpu
