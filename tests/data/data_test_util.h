// Helpers shared by the data/ tests: gzip file reading and writing, IDX bytes (the temporary folder and
// plain files come from tests/util/temp_files.h).
#pragma once
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "util/temp_files.h"

namespace lowbit::data::testing {

using ::lowbit::testing::Bytes;
using ::lowbit::testing::error_of;
using ::lowbit::testing::TempDir;
inline void write_plain(const std::string& path, const Bytes& bytes) { ::lowbit::testing::write_bytes(path, bytes); }

inline void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  if (!gz) throw std::runtime_error("gzopen failed for " + path);
  if (!bytes.empty() && gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()))
    throw std::runtime_error("gzwrite failed for " + path);
  gzclose(gz);
}

inline Bytes read_plain(const std::string& path) { return ::lowbit::testing::read_bytes(path); }

// Whole decompressed contents of a (gzip or plain) file.
inline Bytes read_gz(const std::string& path) {
  Bytes out;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) throw std::runtime_error("gzopen failed for " + path);
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(gz);
  return out;
}

// IDX bytes: magic 0 0 type ndims, big-endian extents, then data.
inline Bytes make_idx(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}


}  // namespace lowbit::data::testing
