// CPU batch-norm kernels over x (N, C, HW) (kernels/common/geometry.h): training statistics,
// the normalization y = (x - mean) * invstd * gamma + beta, and the backward.
#pragma once
#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// mean, invstd (C) of x; running_mean / running_var (C) updated (variance unbiased, as PyTorch).
void batch_norm_statistics(const BatchNormGeometry& g, const float* x, float eps, float momentum, float* mean,
                           float* invstd, float* running_mean, float* running_var);
// mean = running_mean, invstd = 1 / sqrt(running_var + eps).
void batch_norm_eval_statistics(int64_t c, float eps, const float* running_mean, const float* running_var, float* mean,
                                float* invstd);
// gamma / beta null: 1 and 0.
void batch_norm_apply(const BatchNormGeometry& g, const float* x, const float* mean, const float* invstd,
                      const float* gamma, const float* beta, float* y);
// dx (null: skip), dgamma, dbeta (C; null: skip); training: through the batch statistics.
void batch_norm_backward(const BatchNormGeometry& g, bool training, const float* x, const float* dy, const float* mean,
                         const float* invstd, const float* gamma, float* dx, float* dgamma, float* dbeta);

}  // namespace lowbit::kernels::cpu
