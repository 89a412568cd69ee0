// An in-memory image classification data set: raw u8 images and s32 labels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace lowbit::data {

struct Dataset {
  Tensor images;            // u8 (N, C, H, W), contiguous
  Tensor labels;            // s32 (N), each in [0, num_classes)
  int64_t num_classes = 0;
  std::string name;         // e.g. "fashion-mnist-train"

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// Throws lowbit::Error unless ds is well formed: dtypes, ranks, contiguity, matching N,
// num_classes > 0 and every label in [0, num_classes).
void check_dataset(const Dataset& ds);

// Samples per class, (num_classes) entries.
std::vector<int64_t> label_histogram(const Dataset& ds);

}  // namespace lowbit::data
