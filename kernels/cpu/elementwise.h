// CPU elementwise kernels over n contiguous values, and the softmax cross-entropy loss.
#pragma once
#include <cstdint>

namespace lowbit::kernels::cpu {

void add(const float* a, const float* b, float* y, int64_t n);     // y = a + b
void scale(const float* x, float s, float* y, int64_t n);          // y = x * s
double sum(const float* x, int64_t n);                             // in double, in index order
void fill(float* y, float v, int64_t n);
void mul(const float* x, const float* m, float* y, int64_t n);     // y = x * m
void column_sums(const float* x, int64_t rows, int64_t cols, float* y);  // y (cols) = sum of rows, in float

// logits (N, C), labels (N) in [0, C): probs = softmax(logits); returns the summed loss.
double cross_entropy_forward(const float* logits, const int32_t* labels, int64_t n, int64_t c, float* probs);
// dx = (probs - onehot(labels)) * scale.
void cross_entropy_backward(const float* probs, const int32_t* labels, int64_t n, int64_t c, float scale, float* dx);

}  // namespace lowbit::kernels::cpu
