// Raw-file validation for the HDF5 reader: dataset layouts, chunk indexes, storage sizes, the
// global heap (variable-length strings) and version-1 object-header attribute messages, all
// checked before libhdf5 decodes them (libhdf5 1.10 trusts these structures and crashes on
// corrupt ones). Shared declarations are in io/h5_detail.h.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "io/h5_detail.h"

namespace lowbit::io::h5detail {

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


namespace {

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

}  // namespace

// Checks the version-1 header (h5py's default; no checksums). Version-2 headers are checksummed
// by libhdf5.
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

}  // namespace lowbit::io::h5detail
