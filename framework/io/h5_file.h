// HDF5 files: the low-level layer under checkpoints and PyTorch/Keras import and export.
//
// Names. Inside a file every object has a path with '/' separators ("/conv1/weight",
// "/dense/dense/kernel:0"). PyTorch weights dumped with h5py
// (`f.create_dataset(k, data=v.numpy())` for each state_dict entry) are flat root datasets
// whose names contain dots ("/conv1.weight"): only '/' makes groups. Both layouts are read:
// every dataset also has a dotted name, its path without the leading '/' and with each '/'
// replaced by '.' ("/conv1/weight" -> "conv1.weight"). Reader methods that take a dataset
// name accept a path ("/a/b" or "a/b") or a dotted name; an exact path wins, and a dotted
// name that two datasets share is an error that names both.
//
// Tensors. f32, s32, s8 and u8 are stored as the matching little-endian HDF5 types. On read,
// float64 and float16 become f32 (an error if a finite value is out of f32 range); int64,
// uint32, uint64, int16 and uint16 become s32 (an error if a value does not fit). A scalar
// dataset (HDF5 scalar dataspace: numpy 0-d arrays, torch's num_batches_tracked) reads as a
// 0-d tensor, shape [] with one element, and a 0-d tensor is written as a scalar dataset.
// Empty tensors (a zero extent) are written and read as they are. Rank is limited to 8.
//
// Safety. Writes go to "<path>.tmp" in the same folder; commit() closes it, fsyncs it,
// renames it over the target and fsyncs the folder, so a crash never leaves a half-written
// target. Reading checks the file before trusting it: not-HDF5 files, truncation, claimed
// sizes larger than the stored bytes can hold, unsupported types or filters (h5py's lzf),
// external links and external raw-data files all raise lowbit::Error naming the file and
// object. HDF5's own error printing is turned off; its innermost message is appended.
// Variable-length strings are decoded by this layer, not by libhdf5: their global heap has no
// checksums and libhdf5 1.10's reader (H5HG_read) crashes or hangs on corrupt heaps, so the raw
// heap references are fetched and every heap collection is bounds-checked before use. Other
// libhdf5 1.10 crashes found by fuzzing are headed off the same way: compact data sizes,
// chunk shapes and stored chunk sizes, and the attribute messages of unchecksummed (h5py
// default, version-1) object headers are checked before libhdf5 uses them. Written files use
// the 1.8+ format (checksummed superblock and object headers, links and attributes kept in the
// headers), so most corruption of them is caught by checksums. libhdf5 itself remains the
// parser: a file crafted to hit one of its other bugs can still crash it.
//
// Threads: the serial libhdf5 is not thread-safe, so every call into it from this layer
// holds one process-wide lock. Other code must not call libhdf5 concurrently.
#pragma once
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace lowbit::io {

struct H5WriteOptions {
  int gzip_level = 0;    // 0: no compression; 1..9: deflate level for tensor datasets
  bool shuffle = true;   // byte shuffle before deflate (only with gzip_level > 0)
};

// Writes a new HDF5 file atomically. Nothing appears at `path` until commit().
class H5Writer {
 public:
  // Creates (truncates) "<path>.tmp". The folder must exist.
  explicit H5Writer(const std::string& path, H5WriteOptions options = {});
  // Without commit(): closes and removes the .tmp; an existing file at `path` is untouched.
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // Dataset at `path` ("a/b/c" creates groups a and a/b; "conv1.weight" stays one flat
  // root dataset). The tensor must be on the CPU; it may be non-contiguous. An existing
  // object at `path` is an error.
  void write_tensor(const std::string& path, const Tensor& t);
  // Scalar dataset holding a variable-length UTF-8 string (what h5py 3 writes for a str).
  void write_string(const std::string& path, const std::string& text);
  // Scalar (0-d) little-endian int64 dataset: PyTorch's num_batches_tracked in a state dict.
  void write_int64_scalar(const std::string& path, int64_t value);
  // Attribute `name` on the object at `path` ("/" = the root group). When nothing exists at
  // `path` yet, a group is created there. An existing attribute of that name is replaced.
  void set_attr(const std::string& path, const std::string& name, const std::string& value);  // vlen UTF-8
  void set_attr(const std::string& path, const std::string& name, const char* value);
  void set_attr(const std::string& path, const std::string& name, int64_t value);  // int64 scalar
  void set_attr(const std::string& path, const std::string& name, double value);   // float64 scalar
  template <std::integral T>
  void set_attr(const std::string& path, const std::string& name, T value) {
    LB_CHECK(std::in_range<int64_t>(value), "attribute '", name, "' value out of int64 range");
    set_attr(path, name, static_cast<int64_t>(value));
  }
  // 1-d array of fixed-length NUL-padded strings (Keras' layer_names / weight_names).
  void set_attr(const std::string& path, const std::string& name, const std::vector<std::string>& values);

  // Deflate level for the following write_tensor calls (0 turns compression off).
  void set_gzip_level(int level);

  // Finishes the file and renames it over `path`. The writer is unusable afterwards.
  void commit();
  bool committed() const { return committed_; }
  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_, tmp_path_;
  H5WriteOptions options_;
  bool committed_ = false;
};

// Limits that keep a hostile file from asking for absurd memory.
struct H5ReadLimits {
  int64_t max_elements = int64_t{1} << 31;         // per tensor or string array
  int64_t max_bytes = int64_t{8} << 30;            // decoded bytes per tensor
  int64_t max_string_bytes = int64_t{64} << 20;    // per string / string array
  int64_t max_objects = 1000000;                   // objects listed when the file is opened
};

// What a dataset holds, without reading it.
struct H5DatasetInfo {
  std::string path;               // full path, "/a/b"
  std::vector<int64_t> shape;     // [] for a scalar dataset
  std::string type;               // "float32", "float64", "int64", "uint8", "string", ...
  bool is_string = false;
};

// Opens an existing HDF5 file read-only and lists its datasets.
class H5Reader {
 public:
  explicit H5Reader(const std::string& path, H5ReadLimits limits = {});
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  const std::string& path() const { return path_; }

  // Full paths of all datasets reachable through hard links, recursively, sorted ("/a/b").
  const std::vector<std::string>& datasets() const { return datasets_; }
  // Dotted names of the same datasets, in the same order ("a.b").
  std::vector<std::string> names() const;
  // "/a/b" -> "a.b".
  static std::string dotted(const std::string& path);

  // Whether `name` (path or dotted name) resolves to exactly one dataset.
  bool has(const std::string& name) const;
  // Whether a group exists at `path` ("/" always does).
  bool has_group(const std::string& path) const;
  // Full path that `name` resolves to; throws (listing close names) when there is none.
  std::string resolve(const std::string& name) const;
  H5DatasetInfo info(const std::string& name) const;

  Tensor read_tensor(const std::string& name) const;
  // A string dataset with one element (scalar or shape [1]); vlen or fixed-length.
  std::string read_string(const std::string& name) const;
  // All elements of a string dataset, row-major.
  std::vector<std::string> read_strings(const std::string& name) const;

  // Attributes of the object at `path`: "/" (root), a group path, or a dataset name.
  std::vector<std::string> attr_names(const std::string& path) const;
  bool has_attr(const std::string& path, const std::string& name) const;
  std::string attr_string(const std::string& path, const std::string& name) const;  // one string
  int64_t attr_int(const std::string& path, const std::string& name) const;         // integer attr
  double attr_double(const std::string& path, const std::string& name) const;       // float or integer
  // String array attribute (fixed or vlen; a scalar string gives one element).
  std::vector<std::string> attr_strings(const std::string& path, const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  H5ReadLimits limits_;
  std::vector<std::string> datasets_;
  std::map<std::string, std::vector<std::string>> by_dotted_;  // dotted -> full paths
  int64_t file_size_ = 0;

  std::optional<std::string> try_resolve(const std::string& name, std::string* why) const;
  std::string object_path(const std::string& path) const;  // for attribute access
};

}  // namespace lowbit::io
