// Internal to the HDF5 layer (io/h5_*.cpp): shared handles, locking, path helpers and the raw-file
// validation that runs before libhdf5 decodes anything. Not part of the public API (io/h5_file.h).
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/h5_file.h"

namespace lowbit::io::h5detail {

constexpr int kMaxRank = 8;
// Unfiltered data may be shorter than claimed (unwritten parts read as the fill value);
// allow that only up to this many bytes so a forged size cannot make us allocate much.
constexpr int64_t kFillSlack = int64_t{16} << 20;
// Deflate cannot expand data by more than about 1032x; shuffle and fletcher32 do not change
// that much. A filtered dataset claiming more is corrupt.
constexpr int64_t kMaxFilterRatio = 1100;
constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;
constexpr int64_t kMaxChunkSlack = int64_t{1} << 22;  // elements a chunk may exceed its dataset by
constexpr H5Z_filter_t kLzfFilter = 32000;
// Written groups keep up to this many links / attributes in their object header.
constexpr unsigned kMaxCompact = 65535, kMinDense = 0;

// Variable-length strings live in HDF5's global heap, which has no checksums, and libhdf5
// 1.10 crashes or loops on corrupt heap references or collections (H5HG_read). So this layer
// never lets libhdf5 decode them: a no-op conversion from any variable-length string to an
// opaque type tagged kRawVlenTag hands back the raw on-disk references (4-byte length, heap
// collection address, 4-byte object index), and the global-heap reader (h5_validate.cpp)
// checks and decodes them.
inline constexpr const char* kRawVlenTag = "lowbit:raw-vlen-string";

// One lock for every libhdf5 call (the Debian build is not thread-safe).
std::recursive_mutex& h5_mutex();

// Held around every use of libhdf5: takes the lock, initializes the library once (error
// printing off, the raw variable-length string conversion registered).
struct Guard {
  std::lock_guard<std::recursive_mutex> lock{h5_mutex()};
  Guard();
};

// The innermost message on HDF5's error stack, as " (HDF5: ...)", and clears the stack.
std::string h5_detail();

// Runs an HDF5 call; a negative result throws lowbit::Error with the parts and HDF5's reason.
#define H5_TRY(call, ...)                            \
  ([&]() {                                           \
    auto r_ = (call);                                \
    if (r_ < 0) {                                    \
      const std::string d_ = h5_detail();            \
      LB_FAIL(__VA_ARGS__, d_);                      \
    }                                                \
    return r_;                                       \
  }())

// ---- RAII handle ------------------------------------------------------------------------------

class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and reports whether closing worked.
  bool close() {
    herr_t r = (id_ >= 0 && close_) ? close_(id_) : 0;
    id_ = H5I_INVALID_HID;
    return r >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

inline Hid plist(hid_t id) { return Hid(id, H5Pclose); }
inline Hid dtype(hid_t id) { return Hid(id, H5Tclose); }
inline Hid dspace(hid_t id) { return Hid(id, H5Sclose); }
inline Hid dset(hid_t id) { return Hid(id, H5Dclose); }
inline Hid attr(hid_t id) { return Hid(id, H5Aclose); }
inline Hid object(hid_t id) { return Hid(id, H5Oclose); }
inline Hid group(hid_t id) { return Hid(id, H5Gclose); }

// ---- Paths ------------------------------------------------------------------------------------

// "/a/b", "a/b" -> {"a", "b"}; "/" and "" -> {}. Empty components and "." are rejected.
std::vector<std::string> split_path(const std::string& path, const std::string& file);
std::string join_path(const std::vector<std::string>& parts, size_t n);
std::string normalize(const std::string& path, const std::string& file);
// Type of the object at `path` (normalized), following hard and soft links only; nullopt when
// nothing is there. External and user-defined links are refused.
std::optional<H5O_type_t> object_type_at(hid_t file, const std::string& path, const std::string& fname);

// "float32", "int64", "string (variable-length)", ... for messages.
std::string type_name(hid_t type);

// Syncs a file or folder to disk (the atomic rename of H5Writer::commit).
void fsync_path(const std::string& path, bool directory, const std::string& what);

// ---- Data sources: a dataset or an attribute ----------------------------------------------------

struct Source {
  Hid obj;          // H5D or H5A
  bool is_attr;
  std::string what;  // "'file': dataset '/a/b'" for messages

  hid_t type() const {
    return is_attr ? H5Aget_type(obj.get()) : H5Dget_type(obj.get());
  }
  hid_t space() const {
    return is_attr ? H5Aget_space(obj.get()) : H5Dget_space(obj.get());
  }
  herr_t read(hid_t memtype, void* buf) const {
    return is_attr ? H5Aread(obj.get(), memtype, buf) : H5Dread(obj.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  }
  hsize_t storage() const {
    return is_attr ? H5Aget_storage_size(obj.get()) : H5Dget_storage_size(obj.get());
  }
};

struct Extent {
  std::vector<int64_t> dims;  // [] for scalar
  int64_t numel = 0;
};

Extent get_extent(const Source& src, hid_t space, const H5ReadLimits& limits);

struct Layout {
  bool filtered = false;  // a filter pipeline (gzip, shuffle, ...) is applied
  bool compact = false;   // raw data kept in the object header
  std::vector<hsize_t> chunk;         // chunk shape when chunked
  std::vector<bool> compresses;       // per filter: may change the data size (all but shuffle, fletcher32)
};

// Refuses filters this libhdf5 cannot decode, external raw data and virtual layouts, and
// chunk sizes that are absurd.
Layout check_dataset_layout(const Source& src);
// Every stored chunk on which no size-changing filter ran must hold a whole chunk.
void check_chunks(const Source& src, const Layout& layout, const Extent& ext, size_t elem_size, int64_t file_size);
// Checks that `bytes` decoded bytes can come from what the file stores for this dataset.
void check_storage(const Source& src, int64_t bytes, const Layout& layout, int64_t file_size, int64_t max_bytes);

// Where a file's addresses point and how wide they are (from its superblock).
struct FileGeometry {
  int fd = -1;               // libhdf5's own descriptor (sec2 driver), read with pread
  int64_t file_size = 0;
  uint64_t base = 0;         // absolute offset of address 0 (the user block size)
  unsigned sizeof_addr = 8;
  unsigned sizeof_size = 8;
};

// Checks every attribute message of the version-1 object header at `addr` before libhdf5
// decodes it (h5py's default format has no checksums).
void check_object_header(uint64_t addr, const FileGeometry& g, const std::string& owner);

// The strings of a dataset or attribute (fixed or variable length, checked against the file).
std::vector<std::string> read_strings_from(const Source& src, const H5ReadLimits& limits, const FileGeometry& geom,
                                           bool allow_empty_numeric);

// One numeric value of an attribute, read as `memtype`.
template <typename T>
T read_one(const Source& src, hid_t memtype, const H5ReadLimits& limits) {
  Hid space = dspace(H5_TRY(src.space(), src.what, ": cannot read its dataspace"));
  Extent ext = get_extent(src, space.get(), limits);
  LB_CHECK(ext.numel == 1, src.what, " holds ", ext.numel, " values (shape ", Shape(ext.dims).str(), "), not one");
  T v{};
  H5_TRY(src.read(memtype, &v), src.what, ": cannot read its value (corrupt file?)");
  return v;
}

}  // namespace lowbit::io::h5detail
