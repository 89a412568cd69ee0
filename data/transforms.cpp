#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace lowbit::data {
namespace {

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

std::string list_str(const std::vector<float>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

float per_channel(const std::vector<float>& v, int64_t c) { return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)]; }

// Applies the value transforms list[begin, end) to x for channel c, in order.
float eval_values(const std::vector<Transform>& list, size_t begin, size_t end, int64_t c, float x) {
  for (size_t i = begin; i < end; ++i) {
    if (std::holds_alternative<ToFloat>(list[i])) {
      x = x / 255.0f;
    } else if (const auto* n = std::get_if<Normalize>(&list[i])) {
      x = (x - per_channel(n->mean, c)) / per_channel(n->std, c);
    }
  }
  return x;
}

}  // namespace

std::string Transforms::str() const {
  std::ostringstream os;
  for (size_t i = 0; i < list_.size(); ++i) {
    if (i) os << ", ";
    std::visit(Overload{
                   [&](const ToFloat&) { os << "to_float"; },
                   [&](const Normalize& n) { os << "normalize(" << list_str(n.mean) << ", " << list_str(n.std) << ")"; },
                   [&](const RandomCrop& r) { os << "random_crop(" << r.size << ", pad " << r.padding << ")"; },
                   [&](const RandomHFlip& f) { os << "hflip(" << f.p << ")"; },
               },
               list_[i]);
  }
  return list_.empty() ? "none" : os.str();
}

CompiledTransforms::CompiledTransforms(const Transforms& transforms, int64_t channels, int64_t height, int64_t width)
    : c_(channels), h_(height), w_(width), oh_(height), ow_(width) {
  LB_CHECK(channels > 0 && height > 0 && width > 0, "transforms: bad input image shape (", channels, ", ", height, ", ",
           width, ")");
  const auto& list = transforms.list();
  size_t crop_at = list.size();  // value transforms after this index also apply to padding
  for (size_t i = 0; i < list.size(); ++i) {
    if (const auto* n = std::get_if<Normalize>(&list[i])) {
      for (const auto* v : {&n->mean, &n->std})
        LB_CHECK(v->size() == 1 || static_cast<int64_t>(v->size()) == channels, "transforms: normalize has ", v->size(),
                 " values for images with ", channels, " channels (give 1 or ", channels, ")");
      for (float s : n->std)
        LB_CHECK(std::isfinite(s) && s != 0.0f, "transforms: normalize std must be finite and nonzero, got ", s);
      for (float m : n->mean) LB_CHECK(std::isfinite(m), "transforms: normalize mean must be finite, got ", m);
    } else if (const auto* r = std::get_if<RandomCrop>(&list[i])) {
      LB_CHECK(crop_at == list.size(), "transforms: at most one random_crop is supported");
      LB_CHECK(r->size > 0 && r->padding >= 0, "transforms: random_crop needs size > 0 and padding >= 0, got size ",
               r->size, ", padding ", r->padding);
      LB_CHECK(r->size <= oh_ + 2 * r->padding && r->size <= ow_ + 2 * r->padding, "transforms: random_crop(",
               r->size, ", pad ", r->padding, ") does not fit a ", oh_, "x", ow_, " image");
      crop_at = i;
      geo_.push_back({true, r->size, r->padding, oh_, ow_, 0.f});
      oh_ = ow_ = r->size;
    } else if (const auto* f = std::get_if<RandomHFlip>(&list[i])) {
      LB_CHECK(f->p >= 0.0f && f->p <= 1.0f, "transforms: hflip probability must be in [0, 1], got ", f->p);
      geo_.push_back({false, 0, 0, oh_, ow_, f->p});
    }
  }
  lut_.resize(static_cast<size_t>(c_) * 256);
  pad_.assign(static_cast<size_t>(c_), 0.0f);
  for (int64_t c = 0; c < c_; ++c) {
    for (int v = 0; v < 256; ++v)
      lut_[static_cast<size_t>(c * 256 + v)] = eval_values(list, 0, list.size(), c, static_cast<float>(v));
    if (crop_at < list.size()) pad_[static_cast<size_t>(c)] = eval_values(list, crop_at + 1, list.size(), c, 0.0f);
  }
}

void CompiledTransforms::apply(const uint8_t* image, Rng& rng, float* out) const {
  // Output pixel (y, x) reads source pixel (y + ty, sx * x + tx); outside the source it is padding.
  // Flips before or after the crop are bijections of the full image, so "outside the source"
  // is exactly "in the crop's padding".
  int64_t ty = 0, tx = 0, sx = 1;
  for (const Geo& g : geo_) {
    if (g.crop) {
      const int64_t oy = static_cast<int64_t>(rng.below(static_cast<uint64_t>(g.in_h + 2 * g.padding - g.size + 1)));
      const int64_t ox = static_cast<int64_t>(rng.below(static_cast<uint64_t>(g.in_w + 2 * g.padding - g.size + 1)));
      ty += oy - g.padding;
      tx += sx * (ox - g.padding);
    } else if (rng.uniform() < g.p) {
      tx += sx * (g.in_w - 1);
      sx = -sx;
    }
  }
  // Output columns [x0, x1) read inside the source row.
  const int64_t x0 = std::clamp<int64_t>(sx > 0 ? -tx : tx - w_ + 1, 0, ow_);
  const int64_t x1 = std::clamp<int64_t>(sx > 0 ? w_ - tx : tx + 1, x0, ow_);
  for (int64_t c = 0; c < c_; ++c) {
    const float* lut = lut_.data() + c * 256;
    const float pad = pad_[static_cast<size_t>(c)];
    for (int64_t y = 0; y < oh_; ++y) {
      float* o = out + (c * oh_ + y) * ow_;
      const int64_t sy = y + ty;
      if (sy < 0 || sy >= h_) {
        std::fill(o, o + ow_, pad);
        continue;
      }
      std::fill(o, o + x0, pad);
      std::fill(o + x1, o + ow_, pad);
      const uint8_t* row = image + (c * h_ + sy) * w_;
      if (sx > 0) {
        for (int64_t x = x0; x < x1; ++x) o[x] = lut[row[x + tx]];
      } else {
        for (int64_t x = x0; x < x1; ++x) o[x] = lut[row[tx - x]];
      }
    }
  }
}

Tensor CompiledTransforms::apply(const Tensor& image, Rng& rng) const {
  LB_CHECK(image.dtype() == DType::u8 && image.is_contiguous() && image.shape() == Shape({c_, h_, w_}),
           "transforms: expected a contiguous u8 image (", c_, ", ", h_, ", ", w_, "), got ", image.str());
  Tensor out = Tensor::empty(out_shape());
  apply(image.data<uint8_t>(), rng, out.f32());
  return out;
}

}  // namespace lowbit::data
