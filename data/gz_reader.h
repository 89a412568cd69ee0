// Sequential reading of a gzip or plain file through zlib (gzread reads plain files as is).
// Internal to data/: every failure is a lowbit::Error naming the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data::detail {

class GzReader {
 public:
  // Opens path; a missing or unreadable file throws "cannot open <path>: <strerror>; <hint>".
  GzReader(const std::string& path, const std::string& hint);
  ~GzReader();
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes into dst; returns the count, less than n only at the end of the data.
  // Corrupt or truncated gzip streams and I/O errors throw.
  size_t read(void* dst, size_t n);
  // Reads everything that is left (grows in chunks, so a lying header cannot force a huge allocation).
  std::vector<uint8_t> read_rest();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* gz_ = nullptr;  // gzFile
};

}  // namespace lowbit::data::detail
