// CIFAR-10 binary version: each record is 3073 bytes, a label byte (0..9) then the 32x32
// image as 1024 red, 1024 green and 1024 blue bytes (row-major, so already CHW).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lowbit::data {

inline constexpr int64_t kCifarRecordBytes = 1 + 3 * 32 * 32;

// Concatenates the records of all files (plain or .gz) in order. images u8 (N, 3, 32, 32),
// labels s32 (N). A length that is not a whole number of records, an empty file list or a
// label above 9 throws lowbit::Error naming the file.
Dataset read_cifar10(const std::vector<std::string>& files, const std::string& name = "cifar10");

// data_batch_{1..5}.bin (train) or test_batch.bin in dir (the cifar-10-batches-bin folder).
Dataset load_cifar10(const std::string& dir, bool train = true);

}  // namespace lowbit::data
