// Exact integer convolution and matrix product through oneDNN's int8 primitives (u8 or s8
// activations x s8 weights -> s32), for the integer engine (framework/intnet). No bias and no
// scaling: the caller adds the int32 bias and requantizes with its own arithmetic.
//
// Exact only where oneDNN accumulates in s32 without intermediate saturation: CPUs with VNNI
// (AVX-512 VNNI, AVX2 VNNI, AMX). Elsewhere int8_exact() is false and the engine keeps its
// reference loops.
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// Whether oneDNN's int8 kernels on this CPU accumulate exactly (VNNI or AMX). LOWBIT_INT8_REFERENCE=1
// in the environment forces false (the engine's reference loops, for comparison).
bool int8_exact();

// One convolution shape: src (N, C_in, H, W) u8 or s8, weights s8 (C_out, C_in/groups, KH, KW),
// dst s32 (N, C_out, OH, OW), all plain row-major. Built once (weights reordered then), run many times.
class Int8Conv {
 public:
  Int8Conv(const Conv2dGeometry& g, bool src_signed, const int8_t* weights);
  ~Int8Conv();
  void run(const void* src, int32_t* dst);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// dst (N, O) s32 = src (N, K) u8/s8 x weights^T, weights (O, K) s8 row-major.
class Int8Matmul {
 public:
  Int8Matmul(int64_t n, int64_t k, int64_t o, bool src_signed, const int8_t* weights);
  ~Int8Matmul();
  void run(const void* src, int32_t* dst);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::kernels::cpu
