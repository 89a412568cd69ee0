// H5Writer: the atomic HDF5 writer (io/h5_file.h).
#include "io/h5_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/strings.h"
#include "io/h5_detail.h"

namespace fs = std::filesystem;

namespace lowbit::io {

using namespace h5detail;

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

}  // namespace lowbit::io
