// CPU parameter updates of n values in place (torch.optim 1.13: scalars rounded to float, every
// a + alpha * b one fused multiply-add as in ATen's vectorized kernels). Scalars: geometry.h.
#pragma once
#include <cstdint>

#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// buf null: plain SGD; else momentum (first: the buffer starts as the update).
void sgd_step(const SgdStep& s, float* p, const float* grad, float* buf, bool first, int64_t n);
// max_exp_avg_sq null: no AMSGrad.
void adam_step(const AdamStep& s, float* p, const float* grad, float* exp_avg, float* exp_avg_sq,
               float* max_exp_avg_sq, int64_t n);
void scale_in_place(float* p, float f, int64_t n);

}  // namespace lowbit::kernels::cpu
