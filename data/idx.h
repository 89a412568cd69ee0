// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// Layout: magic 0x00 0x00 <type> <ndims>, then ndims big-endian u32 extents, then the
// elements in row-major order. Only type 0x08 (unsigned byte) is supported.
#pragma once
#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "tensor/tensor.h"

namespace lowbit::data {

// Where the Debian package dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

// Reads one IDX file. Returns a u8 tensor with the file's extents, e.g. (N, 28, 28) or (N).
// Throws lowbit::Error naming the file on a missing file, bad magic, unsupported type,
// zero or oversized extents, truncated data or trailing bytes.
Tensor read_idx(const std::string& path);

// Images file (N, H, W) + labels file (N) -> Dataset with images u8 (N, 1, H, W) and labels
// s32 (N). Checks that the counts match and every label is < num_classes.
// name defaults to the images file's name.
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t num_classes = 10, const std::string& name = "");

// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz in dir. 60000 train / 10000 test images
// (N, 1, 28, 28), 10 classes. Named "fashion-mnist-train" / "fashion-mnist-test".
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDefaultDir, bool train = true);

}  // namespace lowbit::data
