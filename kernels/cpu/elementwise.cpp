#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>

namespace lowbit::kernels::cpu {

void add(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd if (n > 32768) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void scale(const float* x, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

double sum(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

void fill(float* y, float v, int64_t n) { std::fill_n(y, n, v); }

void mul(const float* x, const float* m, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * m[i];
}

void column_sums(const float* x, int64_t rows, int64_t cols, float* y) {
  std::fill_n(y, cols, 0.f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[j] += x[i * cols + j];
}

double cross_entropy_forward(const float* x, const int32_t* y, int64_t n, int64_t c, float* probs) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * c;
    float* pr = probs + i * c;
    float mx = row[0];
    for (int64_t j = 1; j < c; ++j) mx = std::max(mx, row[j]);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(row[j] - mx));
    const double lse = std::log(s) + mx;
    for (int64_t j = 0; j < c; ++j) pr[j] = static_cast<float>(std::exp(row[j] - lse));
    total += lse - row[y[i]];
  }
  return total;
}

void cross_entropy_backward(const float* probs, const int32_t* y, int64_t n, int64_t c, float scale, float* dx) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j) dx[i * c + j] = (probs[i * c + j] - (j == y[i] ? 1.f : 0.f)) * scale;
}

}  // namespace lowbit::kernels::cpu
