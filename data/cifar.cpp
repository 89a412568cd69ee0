#include "data/cifar.h"

#include <cstring>

#include "core/error.h"
#include "data/gz_reader.h"

namespace lowbit::data {
namespace {

constexpr const char* kCifarHint =
    "CIFAR-10 is read in its binary version (cifar-10-batches-bin: data_batch_1.bin ... test_batch.bin), which Debian "
    "does not package: get cifar-10-binary.tar.gz from the CIFAR-10 page, extract it, and set data.path to its "
    "cifar-10-batches-bin folder";
constexpr int64_t kImageBytes = kCifarRecordBytes - 1;

}  // namespace

Dataset read_cifar10(const std::vector<std::string>& files, const std::string& name) {
  LB_CHECK(!files.empty(), "read_cifar10: no files given");
  std::vector<std::vector<uint8_t>> contents;
  int64_t total = 0;
  for (const std::string& path : files) {
    detail::GzReader in(path, kCifarHint);
    std::vector<uint8_t> bytes = in.read_rest();
    const auto len = static_cast<int64_t>(bytes.size());
    LB_CHECK(len > 0, path, ": empty CIFAR-10 file");
    LB_CHECK(len % kCifarRecordBytes == 0, path, ": length ", len, " is not a multiple of the CIFAR-10 record size ",
             kCifarRecordBytes, " (", len / kCifarRecordBytes, " whole records and ", len % kCifarRecordBytes,
             " bytes left over)");
    for (int64_t r = 0; r < len / kCifarRecordBytes; ++r) {
      const uint8_t label = bytes[static_cast<size_t>(r * kCifarRecordBytes)];
      LB_CHECK(label <= 9, path, ": record ", r, " has label ", int{label}, ", expected 0 to 9");
    }
    total += len / kCifarRecordBytes;
    contents.push_back(std::move(bytes));
  }

  Dataset ds;
  ds.images = Tensor::empty({total, 3, 32, 32}, DType::u8);  // (N, 3, 32, 32)
  ds.labels = Tensor::empty({total}, DType::s32);            // (N)
  uint8_t* img = ds.images.data<uint8_t>();
  int32_t* lab = ds.labels.data<int32_t>();
  int64_t n = 0;
  for (const auto& bytes : contents) {
    for (size_t off = 0; off < bytes.size(); off += kCifarRecordBytes, ++n) {
      lab[n] = bytes[off];
      std::memcpy(img + n * kImageBytes, bytes.data() + off + 1, kImageBytes);
    }
  }
  ds.num_classes = 10;
  ds.name = name;
  return ds;
}

Dataset load_cifar10(const std::string& dir, bool train) {
  const std::string d = dir.empty() ? std::string(".") : dir;
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back(d + "/data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back(d + "/test_batch.bin");
  }
  return read_cifar10(files, train ? "cifar10-train" : "cifar10-test");
}

}  // namespace lowbit::data
