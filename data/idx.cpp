#include "data/idx.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "data/gz_reader.h"

namespace lowbit::data {
namespace {

constexpr const char* kFashionHint =
    "Fashion-MNIST comes from `apt-get install dataset-fashion-mnist` (default folder "
    "/usr/share/datasets/fashion-mnist) or set data.path";
constexpr uint8_t kTypeU8 = 0x08;
constexpr int kMaxDims = 8;
constexpr uint64_t kMaxElements = uint64_t{1} << 32;  // 4 GiB of u8: far above any real IDX file

const char* idx_type_name(uint8_t t) {
  switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
  }
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Tensor read_idx(const std::string& path) {
  detail::GzReader in(path, kFashionHint);

  uint8_t magic[4];
  size_t got = in.read(magic, 4);
  LB_CHECK(got == 4, path, ": truncated IDX header: expected 4 magic bytes, got ", got);
  LB_CHECK(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file (magic starts with 0x", std::hex,
           int{magic[0]}, " 0x", int{magic[1]}, ", expected 0x0 0x0)");
  LB_CHECK(magic[2] == kTypeU8, path, ": IDX element type 0x", std::hex, int{magic[2]}, " (",
           idx_type_name(magic[2]), ") is not supported; only 0x08 (unsigned byte) is");
  const int ndims = magic[3];
  LB_CHECK(ndims >= 1 && ndims <= kMaxDims, path, ": IDX header has ", ndims, " dimensions, expected 1 to ", kMaxDims);

  uint8_t dim_bytes[4 * kMaxDims];
  const size_t want = 4 * static_cast<size_t>(ndims);
  got = in.read(dim_bytes, want);
  LB_CHECK(got == want, path, ": truncated IDX header: expected ", want, " bytes of extents, got ", got);

  std::vector<int64_t> dims(static_cast<size_t>(ndims));
  uint64_t count = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint32_t d = be32(dim_bytes + 4 * i);
    LB_CHECK(d != 0, path, ": IDX extent ", i, " is zero");
    // count <= kMaxElements < 2^33 and d < 2^32, so the product fits in 64 bits.
    count *= d;
    LB_CHECK(count <= kMaxElements, path, ": IDX extents too large (more than ", kMaxElements, " elements)");
    dims[static_cast<size_t>(i)] = d;
  }

  // Read in chunks: memory grows with the data actually present, not with the header's claim.
  std::vector<uint8_t> buf;
  buf.reserve(static_cast<size_t>(std::min<uint64_t>(count, uint64_t{1} << 26)));
  size_t chunk = size_t{1} << 20;
  while (buf.size() < count) {
    const size_t old = buf.size();
    const size_t n = std::min<size_t>(chunk, static_cast<size_t>(count) - old);
    buf.resize(old + n);
    const size_t r = in.read(buf.data() + old, n);
    buf.resize(old + r);
    if (r < n) break;
    chunk = std::min<size_t>(chunk * 2, size_t{1} << 26);
  }
  LB_CHECK(buf.size() == count, path, ": truncated IDX data: expected ", count, " bytes for extents ",
           Shape(dims).str(), ", got ", buf.size());
  uint8_t extra;
  if (in.read(&extra, 1) != 0) {
    const size_t trailing = 1 + in.read_rest().size();
    LB_FAIL(path, ": ", trailing, " unexpected trailing bytes after the IDX data (extents ", Shape(dims).str(), ")");
  }

  Tensor t = Tensor::empty(Shape(dims), DType::u8);
  std::memcpy(t.data<uint8_t>(), buf.data(), buf.size());
  return t;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path, int64_t num_classes,
                         const std::string& name) {
  LB_CHECK(num_classes > 0 && num_classes <= 256, "read_idx_dataset: num_classes must be in [1, 256], got ", num_classes);
  Tensor images = read_idx(images_path);
  LB_CHECK(images.rank() == 3, images_path, ": IDX images must have 3 dimensions (N, H, W), got ", images.shape().str());
  Tensor raw_labels = read_idx(labels_path);
  LB_CHECK(raw_labels.rank() == 1, labels_path, ": IDX labels must have 1 dimension (N), got ", raw_labels.shape().str());
  LB_CHECK(raw_labels.size(0) == images.size(0), labels_path, ": ", raw_labels.size(0), " labels but ", images_path,
           " has ", images.size(0), " images");

  Dataset ds;
  ds.images = images.reshape({images.size(0), 1, images.size(1), images.size(2)});  // (N, 1, H, W)
  ds.labels = Tensor::empty({raw_labels.size(0)}, DType::s32);                      // (N)
  const uint8_t* src = raw_labels.data<uint8_t>();
  int32_t* dst = ds.labels.data<int32_t>();
  for (int64_t i = 0; i < raw_labels.numel(); ++i) {
    LB_CHECK(src[i] < num_classes, labels_path, ": label ", int{src[i]}, " of sample ", i, " is not below ",
             num_classes, " (the number of classes)");
    dst[i] = src[i];
  }
  ds.num_classes = num_classes;
  ds.name = name.empty() ? base_name(images_path) : name;
  return ds;
}

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = (dir.empty() ? std::string(".") : dir) + "/" + (train ? "train" : "t10k");
  return read_idx_dataset(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz", 10,
                          train ? "fashion-mnist-train" : "fashion-mnist-test");
}

}  // namespace lowbit::data
