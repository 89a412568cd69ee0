// H5Reader: the checked HDF5 reader (io/h5_file.h).
#include "io/h5_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "core/strings.h"
#include "io/h5_detail.h"

namespace fs = std::filesystem;

namespace lowbit::io {

using namespace h5detail;

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
