#include "io/h5_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/strings.h"

namespace fs = std::filesystem;

namespace lowbit::io {
namespace {

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

// ---- Global state: one lock, HDF5's error printing off --------------------------------------

std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

// Variable-length strings live in HDF5's global heap, which has no checksums, and libhdf5
// 1.10 crashes or loops on corrupt heap references or collections (H5HG_read). So this layer
// never lets libhdf5 decode them: a no-op conversion from any variable-length string to an
// opaque type tagged kRawVlenTag hands back the raw on-disk references (4-byte length, heap
// collection address, 4-byte object index), and GlobalHeap below checks and decodes them.
constexpr const char* kRawVlenTag = "lowbit:raw-vlen-string";

herr_t raw_vlen_conv(hid_t src, hid_t dst, H5T_cdata_t* cdata, size_t, size_t, size_t, void*, void*, hid_t) {
  switch (cdata->command) {
    case H5T_CONV_INIT: {
      if (H5Tget_class(src) != H5T_STRING || H5Tis_variable_str(src) <= 0 || H5Tget_class(dst) != H5T_OPAQUE) return -1;
      char* tag = H5Tget_tag(dst);
      const bool ours = tag && std::strcmp(tag, kRawVlenTag) == 0;
      if (tag) H5free_memory(tag);
      // The source is the on-disk form here; both sizes must be 4 + address size + 4.
      if (!ours || H5Tget_size(src) != H5Tget_size(dst)) return -1;
      cdata->need_bkg = H5T_BKG_NO;
      return 0;
    }
    case H5T_CONV_CONV:  // same bytes in, same bytes out
    case H5T_CONV_FREE:
      return 0;
  }
  return -1;
}

struct Guard {
  std::lock_guard<std::recursive_mutex> lock{h5_mutex()};
  Guard() {
    static std::once_flag once;
    std::call_once(once, [] {
      H5open();
      H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
      hid_t src = H5Tcopy(H5T_C_S1);
      H5Tset_size(src, H5T_VARIABLE);
      hid_t dst = H5Tcreate(H5T_OPAQUE, 16);
      H5Tset_tag(dst, kRawVlenTag);
      H5Tregister(H5T_PERS_SOFT, "lowbit_raw_vlen_string", src, dst, raw_vlen_conv);
      H5Tclose(src);
      H5Tclose(dst);
      H5Eclear2(H5E_DEFAULT);
    });
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};

herr_t error_walk(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err && err->desc) *out = err->desc;  // innermost (walked upward)
  return 0;
}

// The innermost message on HDF5's error stack, as " (HDF5: ...)", and clears the stack.
std::string h5_detail() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, error_walk, &desc);
  H5Eclear2(H5E_DEFAULT);
  return desc.empty() ? std::string() : " (HDF5: " + desc + ")";
}

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

Hid plist(hid_t id) { return Hid(id, H5Pclose); }
Hid dtype(hid_t id) { return Hid(id, H5Tclose); }
Hid dspace(hid_t id) { return Hid(id, H5Sclose); }
Hid dset(hid_t id) { return Hid(id, H5Dclose); }
Hid attr(hid_t id) { return Hid(id, H5Aclose); }
Hid object(hid_t id) { return Hid(id, H5Oclose); }
Hid group(hid_t id) { return Hid(id, H5Gclose); }

// ---- Paths ------------------------------------------------------------------------------------

// "/a/b", "a/b" -> {"a", "b"}; "/" and "" -> {}. Empty components and "." are rejected.
std::vector<std::string> split_path(const std::string& path, const std::string& file) {
  std::vector<std::string> parts;
  size_t i = (!path.empty() && path[0] == '/') ? 1 : 0;
  if (i >= path.size()) return parts;
  while (true) {
    size_t j = path.find('/', i);
    std::string part = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    LB_CHECK(!part.empty() && part != ".", "'", file, "': invalid HDF5 path '", path,
             "' (empty or '.' component; use '/' only between names)");
    parts.push_back(std::move(part));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts, size_t n) {
  if (n == 0) return "/";
  std::string s;
  for (size_t k = 0; k < n; ++k) s += "/" + parts[k];
  return s;
}

std::string normalize(const std::string& path, const std::string& file) {
  auto parts = split_path(path, file);
  return join_path(parts, parts.size());
}

// Type of the object at `path` (normalized), following hard and soft links only; nullopt when
// nothing is there. External and user-defined links are refused.
std::optional<H5O_type_t> object_type_at(hid_t file, const std::string& path, const std::string& fname) {
  if (path == "/") return H5O_TYPE_GROUP;
  auto parts = split_path(path, fname);
  for (size_t k = 1; k <= parts.size(); ++k) {
    std::string prefix = join_path(parts, k);
    htri_t e = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (e <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return std::nullopt;
    }
    H5L_info_t li;
    H5_TRY(H5Lget_info(file, prefix.c_str(), &li, H5P_DEFAULT), "'", fname, "': cannot read link '", prefix, "'");
    LB_CHECK(li.type == H5L_TYPE_HARD || li.type == H5L_TYPE_SOFT, "'", fname, "': '", prefix,
             "' is an external or user-defined link, which is not followed (it could point outside this file)");
  }
  H5O_info_t oi;
  if (H5Oget_info_by_name2(file, path.c_str(), &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;  // e.g. a dangling soft link
  }
  return oi.type;
}

// ---- Types ------------------------------------------------------------------------------------

std::string type_name(hid_t type) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  switch (cls) {
    case H5T_FLOAT: return "float" + std::to_string(size * 8);
    case H5T_INTEGER: return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(size * 8);
    case H5T_STRING: return H5Tis_variable_str(type) > 0 ? "string (variable-length)" : "string (fixed-length)";
    case H5T_COMPOUND: return "compound (e.g. complex numbers)";
    case H5T_ENUM: return "enum (e.g. numpy bool)";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_BITFIELD: return "bitfield";
    case H5T_TIME: return "time";
    default: return "unknown type";
  }
}

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

Extent get_extent(const Source& src, hid_t space, const H5ReadLimits& limits) {
  Extent e;
  H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_SCALAR) {
    e.numel = 1;
    return e;
  }
  LB_CHECK(cls != H5S_NULL, src.what, " is empty (HDF5 null dataspace, h5py.Empty)");
  LB_CHECK(cls == H5S_SIMPLE, src.what, " has an unreadable dataspace", h5_detail());
  int rank = H5Sget_simple_extent_ndims(space);
  LB_CHECK(rank >= 0, src.what, " has an unreadable dataspace", h5_detail());
  LB_CHECK(rank <= kMaxRank, src.what, " has rank ", rank, "; at most ", kMaxRank, " dimensions are supported");
  hsize_t dims[H5S_MAX_RANK];
  H5_TRY(H5Sget_simple_extent_dims(space, dims, nullptr), src.what, " has an unreadable dataspace");
  e.numel = 1;
  for (int i = 0; i < rank; ++i) {
    LB_CHECK(dims[i] <= static_cast<hsize_t>(limits.max_elements), src.what, " claims dimension ", i, " of ", dims[i],
             " elements, over the limit of ", limits.max_elements, " (corrupt file?)");
    e.dims.push_back(static_cast<int64_t>(dims[i]));
  }
  for (int64_t d : e.dims) {
    if (d == 0) { e.numel = 0; break; }
    LB_CHECK(e.numel <= limits.max_elements / d, src.what, " claims shape ", Shape(e.dims).str(),
             ", over the limit of ", limits.max_elements, " elements (corrupt file?)");
    e.numel *= d;
  }
  return e;
}

struct Layout {
  bool filtered = false;  // a filter pipeline (gzip, shuffle, ...) is applied
  bool compact = false;   // raw data kept in the object header
  std::vector<hsize_t> chunk;         // chunk shape when chunked
  std::vector<bool> compresses;       // per filter: may change the data size (all but shuffle, fletcher32)
};

// Refuses filters this libhdf5 cannot decode, external raw data and virtual layouts, and
// chunk sizes that are absurd.
Layout check_dataset_layout(const Source& src) {
  Hid dcpl = plist(H5_TRY(H5Dget_create_plist(src.obj.get()), src.what, ": cannot read its creation properties"));
  H5D_layout_t layout = H5Pget_layout(dcpl.get());
  LB_CHECK(layout != H5D_VIRTUAL, src.what, " is a virtual dataset (data in other files), which is not supported");
  int next = H5Pget_external_count(dcpl.get());
  LB_CHECK(next == 0, src.what, " keeps its data in external raw files, which is not supported");
  Layout out;
  int nfilters = H5Pget_nfilters(dcpl.get());
  LB_CHECK(nfilters >= 0, src.what, ": cannot read its filter pipeline", h5_detail());
  LB_CHECK(nfilters <= 32, src.what, " claims ", nfilters, " filters (corrupt file?)");
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t ncd = 0;
    char name[256] = {0};
    H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &ncd, nullptr, sizeof(name), name, &config);
    LB_CHECK(id >= 0, src.what, ": cannot read filter ", i, " of its pipeline", h5_detail());
    out.compresses.push_back(id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32);
    htri_t avail = H5Zfilter_avail(id);
    H5Eclear2(H5E_DEFAULT);
    if (avail > 0) continue;
    if (id == kLzfFilter)
      LB_FAIL(src.what, " is compressed with h5py's lzf filter (HDF5 filter 32000), which libhdf5 cannot decode; "
              "re-save it without lzf, e.g. create_dataset(..., compression='gzip')");
    name[sizeof(name) - 1] = 0;
    LB_FAIL(src.what, " uses HDF5 filter ", id, name[0] ? std::string(" ('") + name + "')" : std::string(),
            ", which this libhdf5 cannot decode; re-save it without that filter (e.g. compression='gzip')");
  }
  if (layout == H5D_CHUNKED) {
    hsize_t cdims[H5S_MAX_RANK];
    int crank = H5Pget_chunk(dcpl.get(), H5S_MAX_RANK, cdims);
    LB_CHECK(crank >= 0, src.what, ": cannot read its chunk shape", h5_detail());
    double elems = 1;
    for (int i = 0; i < crank; ++i) elems *= static_cast<double>(cdims[i]);
    // libhdf5 allocates whole chunks: they may not be much larger than the dataset itself,
    // and (as libhdf5 requires when creating one) not larger than a fixed maximum extent.
    Hid space = dspace(H5_TRY(H5Dget_space(src.obj.get()), src.what, ": cannot read its dataspace"));
    const hssize_t npoints = H5Sget_simple_extent_npoints(space.get());
    hsize_t dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK];
    const int rank = H5Sget_simple_extent_dims(space.get(), dims, maxdims);
    H5Eclear2(H5E_DEFAULT);
    LB_CHECK(rank == crank, src.what, " has chunks of rank ", crank, " for rank ", rank, " data (corrupt file?)");
    for (int i = 0; i < crank; ++i)
      LB_CHECK(cdims[i] > 0 && (maxdims[i] == H5S_UNLIMITED || cdims[i] <= maxdims[i]), src.what, " claims chunks of ",
               cdims[i], " along dimension ", i, " of at most ", maxdims[i], " (corrupt file?)");
    LB_CHECK(elems * 16 <= static_cast<double>(kMaxChunkBytes) &&
                 elems <= std::max(static_cast<double>(npoints), static_cast<double>(kMaxChunkSlack)),
             src.what, " claims chunks of ", elems, " elements for ", npoints, " elements of data (corrupt file?)");
    out.chunk.assign(cdims, cdims + crank);
  }
  out.filtered = nfilters > 0;
  out.compact = layout == H5D_COMPACT;
  return out;
}

// libhdf5 1.10 trusts the chunk sizes recorded in the chunk index when no filter changes the
// size (an unfiltered dataset, or filters skipped through the chunk's filter mask) and copies
// a whole chunk out of a shorter buffer. So every stored chunk on which no size-changing filter
// ran must hold at least a whole chunk.
void check_chunks(const Source& src, const Layout& layout, const Extent& ext, size_t elem_size, int64_t file_size) {
  if (layout.chunk.empty() || ext.numel == 0) return;
  const size_t rank = ext.dims.size();
  LB_CHECK(layout.chunk.size() == rank, src.what, " has chunks of rank ", layout.chunk.size(), " for rank ", rank,
           " data (corrupt file?)");
  uint64_t chunk_bytes = elem_size, total = 1;
  std::vector<uint64_t> grid(rank);
  for (size_t d = 0; d < rank; ++d) {
    LB_CHECK(layout.chunk[d] > 0, src.what, " has an empty chunk shape (corrupt file?)");
    chunk_bytes *= layout.chunk[d];
    grid[d] = (static_cast<uint64_t>(ext.dims[d]) + layout.chunk[d] - 1) / layout.chunk[d];
    total *= grid[d];
  }
  LB_CHECK(total <= (uint64_t{1} << 22), src.what, " is split into ", total, " chunks, more than supported");
  std::vector<uint64_t> idx(rank, 0);
  std::vector<hsize_t> offset(rank, 0);
  for (uint64_t n = 0; n < total; ++n) {
    for (size_t d = 0; d < rank; ++d) offset[d] = idx[d] * layout.chunk[d];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    H5_TRY(H5Dget_chunk_info_by_coord(src.obj.get(), offset.data(), &mask, &addr, &size), src.what,
           ": cannot look up chunk ", n, " (corrupt file?)");
    if (addr != HADDR_UNDEF) {
      bool resized = false;
      for (size_t f = 0; f < layout.compresses.size(); ++f)
        if (layout.compresses[f] && !(f < 32 && (mask >> f) & 1u)) resized = true;
      LB_CHECK(static_cast<int64_t>(size) <= file_size, src.what, " has a chunk of ", size, " bytes in a ", file_size,
               "-byte file (corrupt file?)");
      LB_CHECK(resized || size >= chunk_bytes, src.what, " has a ", size, "-byte chunk stored without compression, but ",
               "a chunk holds ", chunk_bytes, " bytes (corrupt file?)");
    }
    for (size_t d = rank; d-- > 0;) {  // next chunk, last dimension fastest
      if (++idx[d] < grid[d]) break;
      idx[d] = 0;
    }
  }
}

// Checks that `bytes` decoded bytes can come from what the file stores for this dataset.
void check_storage(const Source& src, int64_t bytes, const Layout& layout, int64_t file_size, int64_t max_bytes) {
  const bool filtered = layout.filtered;
  LB_CHECK(bytes <= max_bytes, src.what, " would need ", bytes, " bytes, over the limit of ", max_bytes);
  if (src.is_attr) {
    // Attributes live in object headers (at most 64 KiB) or dense storage; both are small.
    LB_CHECK(bytes <= file_size + kFillSlack, src.what, " claims ", bytes, " bytes in a ", file_size,
             "-byte file (corrupt file?)");
    return;
  }
  int64_t stored = static_cast<int64_t>(src.storage());
  H5Eclear2(H5E_DEFAULT);
  LB_CHECK(stored <= file_size, src.what, " claims ", stored, " stored bytes in a ", file_size, "-byte file (corrupt file?)");
  // libhdf5 1.10 copies compact data without comparing its size to the dataspace.
  LB_CHECK(!layout.compact || stored == bytes, src.what, " is a compact dataset with ", stored, " bytes of data for ",
           bytes, " bytes of elements (corrupt file?)");
  int64_t can_hold = filtered ? stored * kMaxFilterRatio : stored;
  LB_CHECK(bytes <= can_hold + kFillSlack, src.what, " claims ", bytes, " bytes of data but the file stores only ",
           stored, filtered ? " compressed" : "", " bytes for it (corrupt or truncated file?)");
}

// ---- Global heap ------------------------------------------------------------------------------

// Where a file's addresses point and how wide they are (from its superblock).
struct FileGeometry {
  int fd = -1;               // libhdf5's own descriptor (sec2 driver), read with pread
  int64_t file_size = 0;
  uint64_t base = 0;         // absolute offset of address 0 (the user block size)
  unsigned sizeof_addr = 8;
  unsigned sizeof_size = 8;
};

uint64_t decode_le(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t align8(uint64_t x) { return (x + 7) / 8 * 8; }

// Reads variable-length strings from global heap collections ("GCOL"), checking every bound.
class GlobalHeap {
 public:
  GlobalHeap(const FileGeometry& g, std::string what, int64_t max_bytes) : g_(g), what_(std::move(what)), max_bytes_(max_bytes) {}

  size_t element_size() const { return 4 + g_.sizeof_addr + 4; }

  // One on-disk element: 4-byte length, collection address, 4-byte object index.
  std::string get(const uint8_t* elem) {
    const uint64_t len = decode_le(elem, 4);
    const uint64_t addr = decode_le(elem + 4, g_.sizeof_addr);
    const uint64_t idx = decode_le(elem + 4 + g_.sizeof_addr, 4);
    if (len == 0 || addr == 0) return std::string();  // libhdf5 reads these as empty / null
    const Collection& c = collection(addr);
    auto it = c.objects.find(idx);
    LB_CHECK(it != c.objects.end(), what_, ": a string refers to object ", idx, " of the global heap at ", addr,
             ", which does not exist (corrupt file?)");
    LB_CHECK(len <= it->second.second, what_, ": a string claims ", len, " bytes but its heap object holds ",
             it->second.second, " (corrupt file?)");
    const char* p = reinterpret_cast<const char*>(c.bytes.data() + it->second.first);
    size_t n = 0;
    while (n < len && p[n] != 0) ++n;  // C-string semantics, as libhdf5 gives them
    return std::string(p, n);
  }

 private:
  struct Collection {
    std::vector<uint8_t> bytes;
    std::map<uint64_t, std::pair<size_t, uint64_t>> objects;  // index -> (data offset, size)
  };

  void pread_all(uint64_t offset, void* buf, size_t n) const {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(g_.fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      LB_CHECK(r > 0, what_, ": cannot read the global heap at byte ", offset + done,
               r < 0 ? std::string(": ") + std::strerror(errno) : std::string(" (file too short)"));
      done += static_cast<size_t>(r);
    }
  }

  const Collection& collection(uint64_t addr) {
    auto it = cache_.find(addr);
    if (it != cache_.end()) return it->second;
    LB_CHECK(g_.fd >= 0, what_, ": cannot read variable-length strings with this file driver");
    const uint64_t fsize = static_cast<uint64_t>(g_.file_size);
    const unsigned ss = g_.sizeof_size;
    const uint64_t hdr = align8(8 + ss), objhdr = 8 + ss;
    LB_CHECK(g_.base <= fsize && addr <= fsize - g_.base && hdr <= fsize - g_.base - addr, what_,
             ": a string points at byte ", addr, " of the global heap, past the end of the ", fsize, "-byte file (corrupt file?)");
    const uint64_t abs = g_.base + addr;
    uint8_t head[32] = {0};
    pread_all(abs, head, static_cast<size_t>(8 + ss));
    LB_CHECK(std::memcmp(head, "GCOL", 4) == 0 && head[4] == 1, what_, ": no global heap collection at byte ", addr,
             " (corrupt file?)");
    const uint64_t size = decode_le(head + 8, ss);
    LB_CHECK(size >= hdr && size <= fsize - abs, what_, ": the global heap collection at byte ", addr, " claims ", size,
             " bytes in a ", fsize, "-byte file (corrupt file?)");
    loaded_ += static_cast<int64_t>(size);
    LB_CHECK(loaded_ <= max_bytes_, what_, ": its strings need more than ", max_bytes_, " bytes of global heap");
    Collection c;
    c.bytes.resize(static_cast<size_t>(size));
    pread_all(abs, c.bytes.data(), c.bytes.size());
    uint64_t off = hdr;
    while (off + objhdr <= size) {
      const uint8_t* p = c.bytes.data() + off;
      const uint64_t idx = decode_le(p, 2), osize = decode_le(p + 8, ss);
      if (idx == 0) {  // free space; its size includes its header
        if (osize < objhdr || osize > size - off) break;
        off += osize;
        continue;
      }
      LB_CHECK(osize <= size - off - objhdr && align8(osize) <= size - off - objhdr, what_,
               ": global heap object ", idx, " at byte ", addr, " overruns its collection (corrupt file?)");
      LB_CHECK(c.objects.emplace(idx, std::make_pair(static_cast<size_t>(off + objhdr), osize)).second, what_,
               ": global heap at byte ", addr, " has object ", idx, " twice (corrupt file?)");
      off += objhdr + align8(osize);
    }
    return cache_.emplace(addr, std::move(c)).first->second;
  }

  const FileGeometry& g_;
  std::string what_;
  int64_t max_bytes_;
  int64_t loaded_ = 0;
  std::map<uint64_t, Collection> cache_;
};

// ---- Object header attribute messages ------------------------------------------------------------

void pread_exact(int fd, uint64_t offset, void* buf, size_t n, const std::string& what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    LB_CHECK(r > 0, what, ": cannot read byte ", offset + done,
             r < 0 ? std::string(": ") + std::strerror(errno) : std::string(" (file too short)"));
    done += static_cast<size_t>(r);
  }
}

// One attribute message (HDF5 spec IV.A.2.m, versions 1-3). libhdf5 1.10 decodes these without
// comparing the name, type, space and data sizes to the message size (strdup of an unterminated
// name, memcpy of nelmts * size bytes), so they are checked here first.
void check_attribute_message(const uint8_t* p, uint64_t size, const FileGeometry& g, const std::string& owner) {
  auto bad = [&](const char* why) { LB_FAIL(owner, " has a corrupt attribute header (", why, ")"); };
  if (size < 8) bad("too short");
  const unsigned version = p[0], flags = p[1];
  const uint64_t name_len = decode_le(p + 2, 2), dt_len = decode_le(p + 4, 2), ds_len = decode_le(p + 6, 2);
  if (version < 1 || version > 3) bad("unknown version");
  auto pad = [&](uint64_t n) { return version == 1 ? align8(n) : n; };
  uint64_t off = version == 3 ? 9 : 8;
  const uint64_t name_at = off, dt_at = name_at + pad(name_len), ds_at = dt_at + pad(dt_len), data_at = ds_at + pad(ds_len);
  if (off > size || data_at > size) bad("parts larger than the message");
  if (name_len == 0 || std::memchr(p + name_at, 0, static_cast<size_t>(name_len)) == nullptr) bad("unterminated name");
  if (flags & 0x03) return;  // shared datatype or dataspace: described elsewhere
  if (dt_len < 8 || ds_len < 4) bad("type or space too short");
  const unsigned dt_class = p[dt_at] & 0x0F;
  // Enum and compound types carry a member count in their class bits; libhdf5 decodes that
  // many names (strdup) and types. Each member takes at least 2 (enum) or 8 (compound) bytes.
  const uint64_t members = decode_le(p + dt_at + 1, 2);
  if ((dt_class == 8 && members * 2 > dt_len) || (dt_class == 6 && members * 8 > dt_len)) bad("member count");
  uint64_t elem = dt_class == 9 ? 4 + g.sizeof_addr + 4 : decode_le(p + dt_at + 4, 4);  // vlen: a heap reference
  const uint8_t* ds = p + ds_at;
  const unsigned ds_version = ds[0], rank = ds[1], ds_flags = ds[2];
  uint64_t dims_at = 0, nelmts = 1;
  if (ds_version == 1) {
    dims_at = 8;
  } else if (ds_version == 2) {
    dims_at = 4;
    if (ds[3] == 2) nelmts = 0;  // null dataspace
  } else {
    bad("unknown dataspace version");
  }
  if (rank > H5S_MAX_RANK) bad("dataspace rank");
  const uint64_t need = dims_at + uint64_t{rank} * g.sizeof_size * ((ds_flags & 1) ? 2 : 1);
  if (need > ds_len) bad("dataspace larger than its part");
  for (unsigned d = 0; d < rank && nelmts; ++d) {
    const uint64_t dim = decode_le(ds + dims_at + uint64_t{d} * g.sizeof_size, g.sizeof_size);
    if (dim != 0 && nelmts > (uint64_t{1} << 40) / dim) bad("absurd dataspace");
    nelmts *= dim;
  }
  if (elem != 0 && nelmts > (uint64_t{1} << 40) / elem) bad("absurd data size");
  if (nelmts * elem > size - data_at) bad("data larger than the message");
}

// Checks every attribute message of the version-1 object header at `addr` (the format h5py
// writes by default; it has no checksums). Version-2 headers are checksummed by libhdf5.
void check_object_header(uint64_t addr, const FileGeometry& g, const std::string& owner) {
  if (g.fd < 0) return;
  const uint64_t fsize = static_cast<uint64_t>(g.file_size);
  auto in_file = [&](uint64_t a, uint64_t n) { return g.base <= fsize && a <= fsize - g.base && n <= fsize - g.base - a; };
  if (!in_file(addr, 16)) return;  // libhdf5 reports this itself
  uint8_t prefix[16];
  pread_exact(g.fd, g.base + addr, prefix, sizeof prefix, owner);
  if (prefix[0] != 1) return;  // "OHDR" (version 2) or something libhdf5 rejects
  std::vector<std::pair<uint64_t, uint64_t>> chunks = {{addr + 16, decode_le(prefix + 8, 4)}};
  std::vector<uint8_t> buf;
  uint64_t total = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    LB_CHECK(c < 1000, owner, " has a corrupt object header (too many continuation chunks)");
    const auto [at, len] = chunks[c];
    LB_CHECK(in_file(at, len), owner, " has a corrupt object header (chunk past the end of the file)");
    total += len;
    LB_CHECK(total <= (uint64_t{64} << 20), owner, " has a corrupt object header (over 64 MiB)");
    buf.assign(static_cast<size_t>(len), 0);
    pread_exact(g.fd, g.base + at, buf.data(), buf.size(), owner);
    uint64_t off = 0;
    while (off + 8 <= len) {
      const uint64_t type = decode_le(&buf[off], 2), msize = decode_le(&buf[off + 2], 2);
      const unsigned mflags = buf[off + 4];
      off += 8;
      LB_CHECK(msize <= len - off, owner, " has a corrupt object header (message larger than its chunk)");
      if (type == 0x10 && msize >= uint64_t{g.sizeof_addr} + g.sizeof_size) {  // continuation
        chunks.emplace_back(decode_le(&buf[off], g.sizeof_addr), decode_le(&buf[off + g.sizeof_addr], g.sizeof_size));
      } else if (type == 0x0C && !(mflags & 0x02)) {  // attribute, not shared
        check_attribute_message(&buf[off], msize, g, owner);
      }
      off += msize;
    }
  }
}

// ---- String reading -----------------------------------------------------------------------------

std::vector<std::string> read_strings_from(const Source& src, const H5ReadLimits& limits, const FileGeometry& geom,
                                           bool allow_empty_numeric) {
  Hid type = dtype(H5_TRY(src.type(), src.what, ": cannot read its type"));
  Hid space = dspace(H5_TRY(src.space(), src.what, ": cannot read its dataspace"));
  H5T_class_t cls = H5Tget_class(type.get());
  const Layout layout = src.is_attr ? Layout{} : check_dataset_layout(src);
  if (allow_empty_numeric && H5Sget_simple_extent_type(space.get()) == H5S_NULL) return {};
  Extent ext = get_extent(src, space.get(), limits);
  if (allow_empty_numeric && ext.numel == 0) return {};  // Keras writes [] as an empty float64 array
  LB_CHECK(cls == H5T_STRING, src.what, " holds ", type_name(type.get()), ", not strings");
  std::vector<std::string> out;
  if (ext.numel == 0) return out;
  htri_t vlen = H5Tis_variable_str(type.get());
  LB_CHECK(vlen >= 0, src.what, ": cannot read its string type", h5_detail());
  H5T_cset_t cset = H5Tget_cset(type.get());
  LB_CHECK(cset >= 0, src.what, ": cannot read its character set", h5_detail());
  Hid mem = dtype(H5_TRY(H5Tcopy(H5T_C_S1), src.what, ": H5Tcopy failed"));
  H5_TRY(H5Tset_cset(mem.get(), cset), src.what, ": cannot set the character set");
  if (vlen > 0) {
    GlobalHeap heap(geom, src.what, std::max<int64_t>(limits.max_string_bytes, 1 << 20));
    const size_t esize = heap.element_size();
    LB_CHECK(ext.numel <= limits.max_string_bytes / static_cast<int64_t>(esize), src.what, " claims ", ext.numel,
             " strings, over the limit (corrupt file?)");
    check_storage(src, ext.numel * static_cast<int64_t>(esize), layout, geom.file_size, limits.max_string_bytes);
    if (!src.is_attr) check_chunks(src, layout, ext, esize, geom.file_size);
    Hid raw = dtype(H5_TRY(H5Tcreate(H5T_OPAQUE, esize), src.what, ": H5Tcreate failed"));
    H5_TRY(H5Tset_tag(raw.get(), kRawVlenTag), src.what, ": H5Tset_tag failed");
    std::vector<uint8_t> buf(esize * static_cast<size_t>(ext.numel), 0);
    H5_TRY(src.read(raw.get(), buf.data()), src.what, ": cannot read its strings (corrupt file?)");
    int64_t total = 0;
    out.reserve(static_cast<size_t>(ext.numel));
    for (int64_t k = 0; k < ext.numel; ++k) {
      out.push_back(heap.get(buf.data() + static_cast<size_t>(k) * esize));
      total += static_cast<int64_t>(out.back().size());
      LB_CHECK(total <= limits.max_string_bytes, src.what, " holds more than ", limits.max_string_bytes, " bytes of strings");
    }
    return out;
  }
  size_t size = H5Tget_size(type.get());
  LB_CHECK(size > 0, src.what, ": cannot read its string size", h5_detail());
  LB_CHECK(static_cast<int64_t>(size) <= limits.max_string_bytes &&
               ext.numel <= limits.max_string_bytes / static_cast<int64_t>(size),
           src.what, " claims ", ext.numel, " strings of ", size, " bytes, over the limit of ", limits.max_string_bytes,
           " bytes (corrupt file?)");
  check_storage(src, ext.numel * static_cast<int64_t>(size), layout, geom.file_size, limits.max_string_bytes);
  if (!src.is_attr) check_chunks(src, layout, ext, size, geom.file_size);
  H5T_str_t pad = H5Tget_strpad(type.get());
  H5_TRY(H5Tset_size(mem.get(), size), src.what, ": cannot make a string type");
  if (pad >= 0) H5Tset_strpad(mem.get(), pad);
  std::vector<char> buf(size * static_cast<size_t>(ext.numel), 0);
  H5_TRY(src.read(mem.get(), buf.data()), src.what, ": cannot read its strings (corrupt file?)");
  out.reserve(static_cast<size_t>(ext.numel));
  for (int64_t k = 0; k < ext.numel; ++k) {
    const char* p = buf.data() + static_cast<size_t>(k) * size;
    size_t n = 0;
    while (n < size && p[n] != 0) ++n;
    if (pad == H5T_STR_SPACEPAD)
      while (n > 0 && p[n - 1] == ' ') --n;
    out.emplace_back(p, n);
  }
  return out;
}

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


void fsync_path(const std::string& path, bool directory, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  LB_CHECK(fd >= 0, "cannot open '", path, "' to sync ", what, ": ", std::strerror(errno));
  int r = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot sync folders (EINVAL); the rename is still atomic there.
  LB_CHECK(r == 0 || (directory && (err == EINVAL || err == EROFS)), "fsync of '", path, "' failed: ",
           std::strerror(err));
}

}  // namespace

// =================================================================================================
// H5Writer

struct H5Writer::Impl {
  Hid file;
  Hid lcpl;  // UTF-8 link names
  Hid acpl;  // UTF-8 attribute names
  Hid gcpl;  // compact links and attributes

  // Creates the groups along `parts[0..n)` as needed.
  void ensure_groups(const std::vector<std::string>& parts, size_t n, const std::string& fname) {
    for (size_t k = 1; k <= n; ++k) {
      std::string prefix = join_path(parts, k);
      htri_t e = H5_TRY(H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT), "'", fname, "': cannot look up '", prefix, "'");
      if (e > 0) {
        H5O_info_t oi;
        H5_TRY(H5Oget_info_by_name2(file.get(), prefix.c_str(), &oi, H5O_INFO_BASIC, H5P_DEFAULT), "'", fname,
               "': cannot inspect '", prefix, "'");
        LB_CHECK(oi.type == H5O_TYPE_GROUP, "'", fname, "': '", prefix, "' is a dataset, so '", join_path(parts, parts.size()),
                 "' cannot be created below it");
      } else {
        Hid g = group(H5_TRY(H5Gcreate2(file.get(), prefix.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), "'", fname,
                             "': cannot create group '", prefix, "'"));
      }
    }
  }

  // Parent groups made and the leaf free; returns the normalized path.
  std::string prepare_leaf(const std::string& path, const std::string& fname) {
    auto parts = split_path(path, fname);
    LB_CHECK(!parts.empty(), "'", fname, "': a dataset needs a name (got '", path, "')");
    ensure_groups(parts, parts.size() - 1, fname);
    std::string full = join_path(parts, parts.size());
    htri_t e = H5_TRY(H5Lexists(file.get(), full.c_str(), H5P_DEFAULT), "'", fname, "': cannot look up '", full, "'");
    LB_CHECK(e == 0, "'", fname, "': '", full, "' is already written");
    return full;
  }

  // Opens (creating a group when needed) the object that gets an attribute.
  Hid open_for_attr(const std::string& path, const std::string& fname) {
    auto parts = split_path(path, fname);
    std::string full = join_path(parts, parts.size());
    if (!object_type_at(file.get(), full, fname)) ensure_groups(parts, parts.size(), fname);
    return object(H5_TRY(H5Oopen(file.get(), full.c_str(), H5P_DEFAULT), "'", fname, "': cannot open '", full, "'"));
  }

  void write_attr(const std::string& path, const std::string& name, hid_t type, hid_t space, const void* buf,
                  const std::string& fname) {
    LB_CHECK(!name.empty(), "'", fname, "': an attribute needs a name");
    Hid obj = open_for_attr(path, fname);
    htri_t e = H5_TRY(H5Aexists(obj.get(), name.c_str()), "'", fname, "': cannot look up attribute '", name, "' on '", path, "'");
    if (e > 0) H5_TRY(H5Adelete(obj.get(), name.c_str()), "'", fname, "': cannot replace attribute '", name, "' on '", path, "'");
    Hid a = attr(H5_TRY(H5Acreate2(obj.get(), name.c_str(), type, space, acpl.get(), H5P_DEFAULT), "'", fname,
                        "': cannot create attribute '", name, "' on '", path, "'"));
    H5_TRY(H5Awrite(a.get(), type, buf), "'", fname, "': cannot write attribute '", name, "' on '", path, "'");
  }
};

H5Writer::H5Writer(const std::string& path, H5WriteOptions options)
    : impl_(std::make_unique<Impl>()), path_(path), tmp_path_(path + ".tmp"), options_(options) {
  LB_CHECK(!path.empty(), "H5Writer: empty file name");
  LB_CHECK(options_.gzip_level >= 0 && options_.gzip_level <= 9, "'", path, "': gzip level must be 0..9, got ",
           options_.gzip_level);
  fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  LB_CHECK(parent.empty() || fs::is_directory(parent, ec), "cannot write '", path, "': folder '", parent.string(),
           "' does not exist");
  LB_CHECK(!fs::is_directory(path, ec), "cannot write '", path, "': it is a folder");
  Guard g;
  Hid fapl = plist(H5_TRY(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate failed"));
  // 1.8+ format: checksummed superblock and object headers, attributes over 64 KiB.
  H5_TRY(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), "H5Pset_libver_bounds failed");
  H5_TRY(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "H5Pset_fclose_degree failed");
  H5_TRY(H5Pset_file_locking(fapl.get(), true, true), "H5Pset_file_locking failed");
  // Links and attributes stay in the (checksummed) object headers instead of dense storage
  // (fractal heap + B-tree), which libhdf5 1.10 handles badly when corrupt.
  Hid fcpl = plist(H5_TRY(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate failed"));
  H5_TRY(H5Pset_link_phase_change(fcpl.get(), kMaxCompact, kMinDense), "H5Pset_link_phase_change failed");
  H5_TRY(H5Pset_attr_phase_change(fcpl.get(), kMaxCompact, kMinDense), "H5Pset_attr_phase_change failed");
  impl_->file = Hid(H5_TRY(H5Fcreate(tmp_path_.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), "cannot create '",
                           tmp_path_, "' (for '", path, "')"),
                    H5Fclose);
  try {
    impl_->lcpl = plist(H5_TRY(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate failed"));
    H5_TRY(H5Pset_char_encoding(impl_->lcpl.get(), H5T_CSET_UTF8), "H5Pset_char_encoding failed");
    impl_->acpl = plist(H5_TRY(H5Pcreate(H5P_ATTRIBUTE_CREATE), "H5Pcreate failed"));
    H5_TRY(H5Pset_char_encoding(impl_->acpl.get(), H5T_CSET_UTF8), "H5Pset_char_encoding failed");
    impl_->gcpl = plist(H5_TRY(H5Pcreate(H5P_GROUP_CREATE), "H5Pcreate failed"));
    H5_TRY(H5Pset_link_phase_change(impl_->gcpl.get(), kMaxCompact, kMinDense), "H5Pset_link_phase_change failed");
    H5_TRY(H5Pset_attr_phase_change(impl_->gcpl.get(), kMaxCompact, kMinDense), "H5Pset_attr_phase_change failed");
  } catch (...) {
    impl_->gcpl.reset();
    impl_->lcpl.reset();
    impl_->acpl.reset();
    impl_->file.reset();
    ::unlink(tmp_path_.c_str());
    throw;
  }
}

H5Writer::~H5Writer() {
  if (committed_ || !impl_) return;
  Guard g;
  impl_->lcpl.reset();
  impl_->acpl.reset();
  impl_->gcpl.reset();
  impl_->file.reset();
  H5Eclear2(H5E_DEFAULT);
  ::unlink(tmp_path_.c_str());
}

void H5Writer::set_gzip_level(int level) {
  LB_CHECK(level >= 0 && level <= 9, "'", path_, "': gzip level must be 0..9, got ", level);
  options_.gzip_level = level;
}

void H5Writer::write_tensor(const std::string& path, const Tensor& t) {
  LB_CHECK(!committed_, "'", path_, "': write_tensor('", path, "') after commit()");
  LB_CHECK(t.defined(), "'", path_, "': cannot write undefined tensor '", path, "'");
  LB_CHECK(t.device() == Device::cpu, "'", path_, "': tensor '", path, "' is on ", device_name(t.device()),
           "; copy it to the CPU before saving");
  LB_CHECK(static_cast<int>(t.rank()) <= kMaxRank, "'", path_, "': tensor '", path, "' has rank ", t.rank(),
           "; at most ", kMaxRank, " dimensions are supported");
  Tensor c = t.contiguous();
  Guard g;
  std::string full = impl_->prepare_leaf(path, path_);
  hid_t ftype = H5T_IEEE_F32LE, mtype = H5T_NATIVE_FLOAT;
  switch (c.dtype()) {
    case DType::f32: ftype = H5T_IEEE_F32LE; mtype = H5T_NATIVE_FLOAT; break;
    case DType::s32: ftype = H5T_STD_I32LE; mtype = H5T_NATIVE_INT32; break;
    case DType::s8: ftype = H5T_STD_I8LE; mtype = H5T_NATIVE_INT8; break;
    case DType::u8: ftype = H5T_STD_U8LE; mtype = H5T_NATIVE_UINT8; break;
  }
  std::vector<hsize_t> dims(c.shape().dims().begin(), c.shape().dims().end());
  Hid space = dspace(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  LB_CHECK(space, "'", path_, "': cannot make a dataspace for '", full, "' ", c.shape().str(), h5_detail());
  Hid dcpl = plist(H5_TRY(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate failed"));
  H5_TRY(H5Pset_attr_phase_change(dcpl.get(), kMaxCompact, kMinDense), "H5Pset_attr_phase_change failed");
  if (options_.gzip_level > 0 && !dims.empty() && c.numel() > 0) {
    // Chunks of up to ~1 MiB, whole trailing dimensions first.
    const hsize_t target = std::max<hsize_t>(1, (hsize_t{1} << 20) / dtype_size(c.dtype()));
    std::vector<hsize_t> chunk = dims;
    for (size_t d = 0; d < chunk.size(); ++d) {
      hsize_t rest = 1, all = 1;
      for (size_t k = d + 1; k < chunk.size(); ++k) rest *= chunk[k];
      all = rest * chunk[d];
      if (all <= target) break;
      chunk[d] = std::max<hsize_t>(1, target / rest);
    }
    H5_TRY(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "'", path_, "': cannot chunk '", full, "'");
    if (options_.shuffle) H5_TRY(H5Pset_shuffle(dcpl.get()), "'", path_, "': cannot add shuffle to '", full, "'");
    H5_TRY(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options_.gzip_level)), "'", path_,
           "': cannot add gzip to '", full, "'");
  }
  Hid ds = dset(H5_TRY(H5Dcreate2(impl_->file.get(), full.c_str(), ftype, space.get(), impl_->lcpl.get(), dcpl.get(), H5P_DEFAULT),
                       "'", path_, "': cannot create dataset '", full, "'"));
  if (c.numel() > 0)
    H5_TRY(H5Dwrite(ds.get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.raw_data()), "'", path_, "': cannot write dataset '",
           full, "' (disk full?)");
}

void H5Writer::write_string(const std::string& path, const std::string& text) {
  LB_CHECK(!committed_, "'", path_, "': write_string('", path, "') after commit()");
  LB_CHECK(text.find('\0') == std::string::npos, "'", path_, "': string '", path, "' contains a NUL byte");
  Guard g;
  std::string full = impl_->prepare_leaf(path, path_);
  Hid type = dtype(H5_TRY(H5Tcopy(H5T_C_S1), "H5Tcopy failed"));
  H5_TRY(H5Tset_size(type.get(), H5T_VARIABLE), "H5Tset_size failed");
  H5_TRY(H5Tset_cset(type.get(), H5T_CSET_UTF8), "H5Tset_cset failed");
  Hid space = dspace(H5_TRY(H5Screate(H5S_SCALAR), "H5Screate failed"));
  Hid ds = dset(H5_TRY(H5Dcreate2(impl_->file.get(), full.c_str(), type.get(), space.get(), impl_->lcpl.get(), H5P_DEFAULT,
                                  H5P_DEFAULT),
                       "'", path_, "': cannot create dataset '", full, "'"));
  const char* p = text.c_str();
  H5_TRY(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "'", path_, "': cannot write string '", full, "'");
}

void H5Writer::write_int64_scalar(const std::string& path, int64_t value) {
  LB_CHECK(!committed_, "'", path_, "': write_int64_scalar('", path, "') after commit()");
  Guard g;
  std::string full = impl_->prepare_leaf(path, path_);
  Hid space = dspace(H5_TRY(H5Screate(H5S_SCALAR), "H5Screate failed"));
  Hid ds = dset(H5_TRY(H5Dcreate2(impl_->file.get(), full.c_str(), H5T_STD_I64LE, space.get(), impl_->lcpl.get(),
                                  H5P_DEFAULT, H5P_DEFAULT),
                       "'", path_, "': cannot create dataset '", full, "'"));
  H5_TRY(H5Dwrite(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value), "'", path_, "': cannot write '",
         full, "'");
}

void H5Writer::set_attr(const std::string& path, const std::string& name, const std::string& value) {
  LB_CHECK(!committed_, "'", path_, "': set_attr after commit()");
  LB_CHECK(value.find('\0') == std::string::npos, "'", path_, "': attribute '", name, "' contains a NUL byte");
  Guard g;
  Hid type = dtype(H5_TRY(H5Tcopy(H5T_C_S1), "H5Tcopy failed"));
  H5_TRY(H5Tset_size(type.get(), H5T_VARIABLE), "H5Tset_size failed");
  H5_TRY(H5Tset_cset(type.get(), H5T_CSET_UTF8), "H5Tset_cset failed");
  Hid space = dspace(H5_TRY(H5Screate(H5S_SCALAR), "H5Screate failed"));
  const char* p = value.c_str();
  impl_->write_attr(path, name, type.get(), space.get(), &p, path_);
}

void H5Writer::set_attr(const std::string& path, const std::string& name, const char* value) {
  LB_CHECK(value != nullptr, "'", path_, "': attribute '", name, "' is a null string");
  set_attr(path, name, std::string(value));
}

void H5Writer::set_attr(const std::string& path, const std::string& name, int64_t value) {
  LB_CHECK(!committed_, "'", path_, "': set_attr after commit()");
  Guard g;
  Hid space = dspace(H5_TRY(H5Screate(H5S_SCALAR), "H5Screate failed"));
  Hid type = dtype(H5_TRY(H5Tcopy(H5T_STD_I64LE), "H5Tcopy failed"));
  impl_->write_attr(path, name, type.get(), space.get(), &value, path_);
}

void H5Writer::set_attr(const std::string& path, const std::string& name, double value) {
  LB_CHECK(!committed_, "'", path_, "': set_attr after commit()");
  Guard g;
  Hid space = dspace(H5_TRY(H5Screate(H5S_SCALAR), "H5Screate failed"));
  Hid type = dtype(H5_TRY(H5Tcopy(H5T_IEEE_F64LE), "H5Tcopy failed"));
  impl_->write_attr(path, name, type.get(), space.get(), &value, path_);
}

void H5Writer::set_attr(const std::string& path, const std::string& name, const std::vector<std::string>& values) {
  LB_CHECK(!committed_, "'", path_, "': set_attr after commit()");
  size_t width = 1;
  for (const auto& v : values) {
    LB_CHECK(v.find('\0') == std::string::npos, "'", path_, "': attribute '", name, "' has a string with a NUL byte");
    width = std::max(width, v.size());
  }
  std::vector<char> buf(std::max<size_t>(1, width * values.size()), 0);  // HDF5 wants a buffer even for 0 strings
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  Guard g;
  Hid type = dtype(H5_TRY(H5Tcopy(H5T_C_S1), "H5Tcopy failed"));
  H5_TRY(H5Tset_size(type.get(), width), "H5Tset_size failed");
  H5_TRY(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "H5Tset_strpad failed");
  hsize_t n = values.size();
  Hid space = dspace(H5_TRY(H5Screate_simple(1, &n, nullptr), "H5Screate_simple failed"));
  impl_->write_attr(path, name, type.get(), space.get(), buf.data(), path_);
}

void H5Writer::commit() {
  LB_CHECK(!committed_, "'", path_, "': commit() called twice");
  {
    Guard g;
    impl_->lcpl.reset();
    impl_->acpl.reset();
    impl_->gcpl.reset();
    H5_TRY(H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL), "cannot flush '", tmp_path_, "' (disk full?)");
    bool closed = impl_->file.close();
    if (!closed) {
      const std::string d = h5_detail();
      LB_FAIL("cannot finish '", tmp_path_, "' (disk full?)", d);
    }
  }
  fsync_path(tmp_path_, false, "the new file");
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    LB_FAIL("cannot rename '", tmp_path_, "' to '", path_, "': ", std::strerror(errno));
  committed_ = true;
  fs::path parent = fs::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true, "the folder");
}

// =================================================================================================
// H5Reader

namespace {

herr_t attr_name_cb(hid_t, const char* name, const H5A_info_t*, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (out->size() >= 100000) return -1;
  try {
    out->emplace_back(name ? name : "");
  } catch (...) {
    return -1;
  }
  return 0;
}

std::vector<std::string> list_attrs(hid_t obj, const std::string& what) {
  std::vector<std::string> out;
  hsize_t idx = 0;
  H5_TRY(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, attr_name_cb, &out), what, ": cannot list its attributes (corrupt file?)");
  return out;
}

}  // namespace

struct H5Reader::Impl {
  Hid file;
  FileGeometry geom;
  std::set<uint64_t> checked_headers;  // object headers whose attribute messages were checked

  // Opens the object at `path` and checks its attribute messages before libhdf5 decodes them.
  Hid open_for_attrs(const std::string& path, const std::string& owner) {
    Hid obj = object(H5_TRY(H5Oopen(file.get(), path.c_str(), H5P_DEFAULT), owner, ": cannot open it (corrupt file?)"));
    H5O_info_t info;
    H5_TRY(H5Oget_info2(obj.get(), &info, H5O_INFO_BASIC), owner, ": cannot inspect it (corrupt file?)");
    if (!checked_headers.count(info.addr)) {
      check_object_header(info.addr, geom, owner);
      checked_headers.insert(info.addr);
    }
    return obj;
  }

  Source open_attr(const std::string& obj_path, const std::string& name, const std::string& fname) {
    const std::string owner = "'" + fname + "': '" + obj_path + "'";
    Hid obj = open_for_attrs(obj_path, owner);
    htri_t e = H5_TRY(H5Aexists(obj.get(), name.c_str()), owner, ": cannot look up attribute '", name, "'");
    if (e == 0) {
      std::string have;
      for (const auto& a : list_attrs(obj.get(), owner)) have += (have.empty() ? "" : ", ") + a;
      LB_FAIL(owner, " has no attribute '", name, "' (", have.empty() ? std::string("it has none") : "it has: " + have, ")");
    }
    const std::string what = "'" + fname + "': attribute '" + name + "' of '" + obj_path + "'";
    return Source{attr(H5_TRY(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), what, ": cannot open it (corrupt file?)")), true, what};
  }
};

namespace {

struct VisitState {
  std::vector<std::string>* out;
  int64_t count = 0, max = 0;
  bool too_many = false, failed = false;
};

herr_t visit_cb(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto* st = static_cast<VisitState*>(data);
  if (++st->count > st->max) {
    st->too_many = true;
    return -1;
  }
  try {
    if (info && name && info->type == H5O_TYPE_DATASET && std::strcmp(name, ".") != 0)
      st->out->push_back(std::string("/") + name);
  } catch (...) {
    st->failed = true;
    return -1;
  }
  return 0;
}

}  // namespace

H5Reader::H5Reader(const std::string& path, H5ReadLimits limits) : impl_(std::make_unique<Impl>()), path_(path), limits_(limits) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  LB_CHECK(fs::exists(st), "cannot open '", path, "': no such file");
  LB_CHECK(!fs::is_directory(st), "cannot open '", path, "': it is a folder, not an HDF5 file");
  file_size_ = static_cast<int64_t>(fs::file_size(path, ec));
  LB_CHECK(!ec, "cannot open '", path, "': ", ec.message());
  Guard g;
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is < 0) {
    const std::string d = h5_detail();
    LB_FAIL("cannot read '", path, "'", d);
  }
  LB_CHECK(is > 0, "'", path, "' is not an HDF5 file (no HDF5 signature found)");
  Hid fapl = plist(H5_TRY(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate failed"));
  H5_TRY(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "H5Pset_fclose_degree failed");
  H5_TRY(H5Pset_file_locking(fapl.get(), true, true), "H5Pset_file_locking failed");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (f < 0) {
    const std::string d = h5_detail();
    LB_FAIL("cannot open HDF5 file '", path, "' (", file_size_, " bytes): it is truncated or corrupt", d);
  }
  impl_->file = Hid(f, H5Fclose);
  try {
    FileGeometry& geom = impl_->geom;
    geom.file_size = file_size_;
    Hid fcpl = plist(H5_TRY(H5Fget_create_plist(impl_->file.get()), "'", path, "': cannot read its creation properties"));
    size_t sa = 0, ss = 0;
    hsize_t userblock = 0;
    H5_TRY(H5Pget_sizes(fcpl.get(), &sa, &ss), "'", path, "': cannot read its address sizes");
    H5_TRY(H5Pget_userblock(fcpl.get(), &userblock), "'", path, "': cannot read its user block size");
    LB_CHECK(sa >= 2 && sa <= 8 && ss >= 2 && ss <= 8, "'", path, "' has unsupported address sizes (corrupt file?)");
    geom.sizeof_addr = static_cast<unsigned>(sa);
    geom.sizeof_size = static_cast<unsigned>(ss);
    geom.base = userblock;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(impl_->file.get(), H5P_DEFAULT, &handle) >= 0 && handle) geom.fd = *static_cast<int*>(handle);
    H5Eclear2(H5E_DEFAULT);
    VisitState vs{&datasets_, 0, limits_.max_objects};
    // Native order: libhdf5 1.10 frees uninitialized pointers when building a sorted link
    // table from a corrupt dense group fails (H5G__dense_build_table); native order iterates
    // the index directly. The names are sorted below.
    herr_t r = H5Ovisit2(impl_->file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, visit_cb, &vs, H5O_INFO_BASIC);
    LB_CHECK(!vs.too_many, "'", path, "' has more than ", limits_.max_objects, " objects (corrupt file?)");
    if (r < 0 || vs.failed) {
      const std::string d = h5_detail();
      LB_FAIL("cannot list the contents of '", path, "': the file is corrupt", d);
    }
  } catch (...) {
    impl_->file.reset();  // closed under the lock
    H5Eclear2(H5E_DEFAULT);
    throw;
  }
  std::sort(datasets_.begin(), datasets_.end());
  datasets_.erase(std::unique(datasets_.begin(), datasets_.end()), datasets_.end());
  for (const auto& p : datasets_) by_dotted_[dotted(p)].push_back(p);
}

H5Reader::~H5Reader() {
  if (!impl_) return;
  Guard g;
  impl_->file.reset();
  H5Eclear2(H5E_DEFAULT);
}

std::string H5Reader::dotted(const std::string& path) {
  std::string s = (!path.empty() && path[0] == '/') ? path.substr(1) : path;
  std::replace(s.begin(), s.end(), '/', '.');
  return s;
}

std::vector<std::string> H5Reader::names() const {
  std::vector<std::string> out;
  out.reserve(datasets_.size());
  for (const auto& p : datasets_) out.push_back(dotted(p));
  return out;
}

std::optional<std::string> H5Reader::try_resolve(const std::string& name, std::string* why) const {
  if (name.empty() || name == "/") return std::nullopt;
  std::string p;
  try {
    p = normalize(name, path_);
  } catch (const Error&) {
    p.clear();
  }
  if (!p.empty()) {
    if (std::binary_search(datasets_.begin(), datasets_.end(), p)) return p;
    Guard g;
    auto type = object_type_at(impl_->file.get(), p, path_);  // other hard links, soft links
    if (type && *type == H5O_TYPE_DATASET) return p;
  }
  auto it = by_dotted_.find(dotted(name));
  if (it != by_dotted_.end()) {
    if (it->second.size() == 1) return it->second[0];
    if (why) {
      *why = "'" + name + "' is ambiguous: it names";
      for (const auto& q : it->second) *why += " '" + q + "'";
      *why += "; pass the full path";
    }
  }
  return std::nullopt;
}

bool H5Reader::has(const std::string& name) const {
  try {
    return try_resolve(name, nullptr).has_value();
  } catch (const Error&) {
    return false;
  }
}

bool H5Reader::has_group(const std::string& path) const {
  Guard g;
  try {
    auto type = object_type_at(impl_->file.get(), normalize(path, path_), path_);
    return type && *type == H5O_TYPE_GROUP;
  } catch (const Error&) {
    return false;
  }
}

std::string H5Reader::resolve(const std::string& name) const {
  std::string why;
  if (auto p = try_resolve(name, &why)) return *p;
  LB_CHECK(why.empty(), "'", path_, "': ", why);
  // Close names: smallest edit distance to the dotted name or the path.
  std::vector<std::pair<size_t, std::string>> scored;
  const std::string want = dotted(name);
  for (const auto& p : datasets_) {
    std::string d = dotted(p);
    size_t s = edit_distance(want, d);
    if (d.find(want) != std::string::npos || want.find(d) != std::string::npos) s = std::min<size_t>(s, 1);
    scored.emplace_back(s, d);
  }
  std::sort(scored.begin(), scored.end());
  std::string close;
  size_t limit = std::max<size_t>(3, want.size() / 2);
  for (size_t i = 0; i < scored.size() && i < 5; ++i) {
    if (scored[i].first > limit && i > 0) break;
    close += (close.empty() ? "" : ", ") + scored[i].second;
  }
  LB_FAIL("'", path_, "': no dataset '", name, "' (the file has ", datasets_.size(), " datasets",
          close.empty() ? std::string() : "; close names: " + close, ")");
}

H5DatasetInfo H5Reader::info(const std::string& name) const {
  H5DatasetInfo out;
  out.path = resolve(name);
  Guard g;
  std::string what = "'" + path_ + "': dataset '" + out.path + "'";
  Source src{dset(H5_TRY(H5Dopen2(impl_->file.get(), out.path.c_str(), H5P_DEFAULT), what, ": cannot open it (corrupt file?)")),
             false, what};
  Hid type = dtype(H5_TRY(src.type(), what, ": cannot read its type"));
  Hid space = dspace(H5_TRY(src.space(), what, ": cannot read its dataspace"));
  if (H5Sget_simple_extent_type(space.get()) != H5S_NULL) out.shape = get_extent(src, space.get(), limits_).dims;
  out.type = type_name(type.get());
  out.is_string = H5Tget_class(type.get()) == H5T_STRING;
  return out;
}

Tensor H5Reader::read_tensor(const std::string& name) const {
  const std::string full = resolve(name);
  Guard g;
  const std::string what = "'" + path_ + "': dataset '" + full + "'";
  Source src{dset(H5_TRY(H5Dopen2(impl_->file.get(), full.c_str(), H5P_DEFAULT), what, ": cannot open it (corrupt file?)")),
             false, what};
  const Layout layout = check_dataset_layout(src);
  Hid type = dtype(H5_TRY(src.type(), what, ": cannot read its type"));
  Hid space = dspace(H5_TRY(src.space(), what, ": cannot read its dataspace"));
  Extent ext = get_extent(src, space.get(), limits_);
  H5T_class_t cls = H5Tget_class(type.get());
  size_t fsize = H5Tget_size(type.get());
  H5T_sign_t sign = H5Tget_sign(type.get());
  LB_CHECK(cls != H5T_STRING, what, " holds strings; use read_string");

  // How to read: the tensor dtype, the memory type HDF5 converts to, and a widening step.
  enum class Via { direct, f64, i64, u64 } via = Via::direct;
  DType out = DType::f32;
  hid_t memtype = H5T_NATIVE_FLOAT;
  if (cls == H5T_FLOAT && (fsize == 4 || fsize == 2)) {
    out = DType::f32; memtype = H5T_NATIVE_FLOAT;  // float16 widens exactly
  } else if (cls == H5T_FLOAT && fsize == 8) {
    out = DType::f32; memtype = H5T_NATIVE_DOUBLE; via = Via::f64;
  } else if (cls == H5T_INTEGER && fsize == 1) {
    if (sign == H5T_SGN_NONE) { out = DType::u8; memtype = H5T_NATIVE_UINT8; }
    else { out = DType::s8; memtype = H5T_NATIVE_INT8; }
  } else if (cls == H5T_INTEGER && (fsize == 2 || (fsize == 4 && sign != H5T_SGN_NONE))) {
    out = DType::s32; memtype = H5T_NATIVE_INT32;  // int16, uint16, int32: exact
  } else if (cls == H5T_INTEGER && (fsize == 4 || fsize == 8)) {
    out = DType::s32;
    if (sign == H5T_SGN_NONE) { memtype = H5T_NATIVE_UINT64; via = Via::u64; }
    else { memtype = H5T_NATIVE_INT64; via = Via::i64; }
  } else {
    LB_FAIL(what, " holds ", type_name(type.get()), ", which cannot be read as a tensor "
            "(supported: float16/32/64, int8/16/32/64, uint8/16/32/64)");
  }
  LB_CHECK(fsize > 0 && fsize <= 8, what, " has an unreadable element type", h5_detail());
  const int64_t wide = via == Via::direct ? static_cast<int64_t>(dtype_size(out)) : 8;
  LB_CHECK(ext.numel <= limits_.max_bytes / std::max<int64_t>(wide, static_cast<int64_t>(fsize)), what, " claims shape ",
           Shape(ext.dims).str(), ", over the limit of ", limits_.max_bytes, " bytes");
  check_storage(src, ext.numel * static_cast<int64_t>(fsize), layout, file_size_, limits_.max_bytes);
  check_chunks(src, layout, ext, fsize, file_size_);

  Tensor t = Tensor::empty(Shape(ext.dims), out);
  if (ext.numel == 0) return t;
  const size_t n = static_cast<size_t>(ext.numel);
  if (via == Via::direct) {
    H5_TRY(src.read(memtype, t.raw_data()), what, ": cannot read its data (corrupt file?)");
    return t;
  }
  if (via == Via::f64) {
    std::vector<double> tmp(n);
    H5_TRY(src.read(memtype, tmp.data()), what, ": cannot read its data (corrupt file?)");
    float* dst = t.f32();
    for (size_t i = 0; i < n; ++i) {
      double v = tmp[i];
      LB_CHECK(!std::isfinite(v) || std::fabs(v) <= static_cast<double>(FLT_MAX), what, " (float64, converted to float32) holds ",
               v, " at element ", i, ", outside the float32 range");
      dst[i] = static_cast<float>(v);
    }
    return t;
  }
  int32_t* dst = t.data<int32_t>();
  const char* src_name = via == Via::i64 ? (fsize == 8 ? "int64" : "int32") : (fsize == 8 ? "uint64" : "uint32");
  if (via == Via::i64) {
    std::vector<int64_t> tmp(n);
    H5_TRY(src.read(memtype, tmp.data()), what, ": cannot read its data (corrupt file?)");
    for (size_t i = 0; i < n; ++i) {
      LB_CHECK(std::in_range<int32_t>(tmp[i]), what, " (", src_name, ", converted to int32) holds ", tmp[i], " at element ", i,
               ", which does not fit int32");
      dst[i] = static_cast<int32_t>(tmp[i]);
    }
  } else {
    std::vector<uint64_t> tmp(n);
    H5_TRY(src.read(memtype, tmp.data()), what, ": cannot read its data (corrupt file?)");
    for (size_t i = 0; i < n; ++i) {
      LB_CHECK(std::in_range<int32_t>(tmp[i]), what, " (", src_name, ", converted to int32) holds ", tmp[i], " at element ", i,
               ", which does not fit int32");
      dst[i] = static_cast<int32_t>(tmp[i]);
    }
  }
  return t;
}

std::vector<std::string> H5Reader::read_strings(const std::string& name) const {
  const std::string full = resolve(name);
  Guard g;
  const std::string what = "'" + path_ + "': dataset '" + full + "'";
  Source src{dset(H5_TRY(H5Dopen2(impl_->file.get(), full.c_str(), H5P_DEFAULT), what, ": cannot open it (corrupt file?)")),
             false, what};
  return read_strings_from(src, limits_, impl_->geom, false);
}

std::string H5Reader::read_string(const std::string& name) const {
  auto all = read_strings(name);
  LB_CHECK(all.size() == 1, "'", path_, "': dataset '", name, "' holds ", all.size(), " strings, not one");
  return all[0];
}

// ---- Attributes ---------------------------------------------------------------------------------

std::string H5Reader::object_path(const std::string& path) const {
  if (path.empty() || path == "/") return "/";
  std::string p;
  try {
    p = normalize(path, path_);
  } catch (const Error&) {
  }
  if (!p.empty()) {
    Guard g;
    if (object_type_at(impl_->file.get(), p, path_)) return p;
  }
  std::string why;
  if (auto d = try_resolve(path, &why)) return *d;
  LB_CHECK(why.empty(), "'", path_, "': ", why);
  LB_FAIL("'", path_, "': no group or dataset '", path, "'");
}

namespace {



}  // namespace

std::vector<std::string> H5Reader::attr_names(const std::string& path) const {
  const std::string p = object_path(path);
  Guard g;
  const std::string owner = "'" + path_ + "': '" + p + "'";
  Hid obj = impl_->open_for_attrs(p, owner);
  auto out = list_attrs(obj.get(), owner);
  std::sort(out.begin(), out.end());
  return out;
}

bool H5Reader::has_attr(const std::string& path, const std::string& name) const {
  std::string p;
  try {
    p = object_path(path);
  } catch (const Error&) {
    return false;
  }
  Guard g;
  Hid obj = impl_->open_for_attrs(p, "'" + path_ + "': '" + p + "'");
  htri_t e = H5Aexists(obj.get(), name.c_str());
  H5Eclear2(H5E_DEFAULT);
  return e > 0;
}

std::string H5Reader::attr_string(const std::string& path, const std::string& name) const {
  const std::string p = object_path(path);
  Guard g;
  Source src = impl_->open_attr(p, name, path_);
  auto all = read_strings_from(src, limits_, impl_->geom, false);
  LB_CHECK(all.size() == 1, src.what, " holds ", all.size(), " strings, not one");
  return all[0];
}

std::vector<std::string> H5Reader::attr_strings(const std::string& path, const std::string& name) const {
  const std::string p = object_path(path);
  Guard g;
  Source src = impl_->open_attr(p, name, path_);
  return read_strings_from(src, limits_, impl_->geom, true);
}

int64_t H5Reader::attr_int(const std::string& path, const std::string& name) const {
  const std::string p = object_path(path);
  Guard g;
  Source src = impl_->open_attr(p, name, path_);
  Hid type = dtype(H5_TRY(src.type(), src.what, ": cannot read its type"));
  LB_CHECK(H5Tget_class(type.get()) == H5T_INTEGER, src.what, " holds ", type_name(type.get()), ", not an integer");
  if (H5Tget_sign(type.get()) == H5T_SGN_NONE && H5Tget_size(type.get()) >= 8) {
    uint64_t v = read_one<uint64_t>(src, H5T_NATIVE_UINT64, limits_);
    LB_CHECK(std::in_range<int64_t>(v), src.what, " holds ", v, ", which does not fit int64");
    return static_cast<int64_t>(v);
  }
  return read_one<int64_t>(src, H5T_NATIVE_INT64, limits_);
}

double H5Reader::attr_double(const std::string& path, const std::string& name) const {
  const std::string p = object_path(path);
  Guard g;
  Source src = impl_->open_attr(p, name, path_);
  Hid type = dtype(H5_TRY(src.type(), src.what, ": cannot read its type"));
  H5T_class_t cls = H5Tget_class(type.get());
  LB_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, src.what, " holds ", type_name(type.get()), ", not a number");
  return read_one<double>(src, H5T_NATIVE_DOUBLE, limits_);
}

}  // namespace lowbit::io
