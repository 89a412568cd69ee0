// Per-sample transforms: one u8 image (C, H, W) in, one f32 image (C, OH, OW) out.
//
// A Transforms list is applied in order. Value transforms (ToFloat, Normalize) are folded
// into one 256-entry table per channel, evaluated in list order in float, so the results
// equal the step-by-step formulas bit for bit. Geometric transforms (RandomCrop,
// RandomHFlip) only choose which source pixel each output pixel reads. Without ToFloat the
// output holds the raw byte values 0..255 as floats.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "core/rng.h"
#include "tensor/tensor.h"

namespace lowbit::data {

struct ToFloat {};  // x / 255

// (x - mean[c]) / std[c]; a single value applies to every channel.
struct Normalize {
  std::vector<float> mean;
  std::vector<float> std;
};

// A size x size window at a uniformly random position of the image padded by `padding`
// zeros on every side (zeros in the value domain at this point of the list).
// Draws rng.below(H + 2p - size + 1) for the row offset, then the same for the column.
struct RandomCrop {
  int64_t size = 0;
  int64_t padding = 0;
};

// Mirrors columns when rng.uniform() < p (always draws one number).
struct RandomHFlip {
  float p = 0.5f;
};

using Transform = std::variant<ToFloat, Normalize, RandomCrop, RandomHFlip>;

class Transforms {
 public:
  Transforms() = default;
  Transforms(std::initializer_list<Transform> list) : list_(list) {}
  explicit Transforms(std::vector<Transform> list) : list_(std::move(list)) {}

  Transforms& add(Transform t) {
    list_.push_back(std::move(t));
    return *this;
  }
  const std::vector<Transform>& list() const { return list_; }
  bool empty() const { return list_.empty(); }
  // "to_float, normalize([0.286], [0.353]), random_crop(28, pad 4), hflip(0.5)"
  std::string str() const;

 private:
  std::vector<Transform> list_;
};

// A Transforms list bound to an input shape (C, H, W). Construction validates the list
// (channel counts, crop fits, std != 0, at most one RandomCrop) and builds the tables;
// apply() is const and safe to call from several threads with separate Rngs.
class CompiledTransforms {
 public:
  CompiledTransforms() = default;
  CompiledTransforms(const Transforms& transforms, int64_t channels, int64_t height, int64_t width);

  int64_t channels() const { return c_; }
  int64_t out_height() const { return oh_; }
  int64_t out_width() const { return ow_; }
  Shape out_shape() const { return {c_, oh_, ow_}; }  // (C, OH, OW)
  int64_t out_numel() const { return c_ * oh_ * ow_; }

  // image: u8 (C, H, W) contiguous; out: f32 (C, OH, OW). Draws from rng in list order.
  void apply(const uint8_t* image, Rng& rng, float* out) const;
  // u8 (C, H, W) -> f32 (C, OH, OW).
  Tensor apply(const Tensor& image, Rng& rng) const;

 private:
  struct Geo {
    bool crop = false;  // else flip
    int64_t size = 0, padding = 0;
    int64_t in_h = 0, in_w = 0;  // image size entering this step
    float p = 0.f;
  };
  int64_t c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;
  std::vector<Geo> geo_;     // geometric steps in list order
  std::vector<float> lut_;   // (C, 256): byte value -> output value
  std::vector<float> pad_;   // (C): value of padded pixels
};

}  // namespace lowbit::data
