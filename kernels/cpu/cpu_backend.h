// The CPU backend: the reference implementation of every family in kernels/backend.h. It owns
// the oneDNN engine and stream and the convolution and matmul primitive caches; the loops are
// the kernels of this folder (pool.h, batch_norm.h, activation.h, elementwise.h, fake_quant.h,
// optimizer.h).
#pragma once
#include <memory>

#include "kernels/backend.h"

namespace lowbit::kernels::cpu {

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace lowbit::kernels::cpu
