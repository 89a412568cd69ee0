#include "io/h5_detail.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lowbit::io::h5detail {

namespace {

// The no-op conversion described at kRawVlenTag.
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

herr_t error_walk(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err && err->desc) *out = err->desc;  // innermost (walked upward)
  return 0;
}

}  // namespace

std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

Guard::Guard() {
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

std::string h5_detail() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, error_walk, &desc);
  H5Eclear2(H5E_DEFAULT);
  return desc.empty() ? std::string() : " (HDF5: " + desc + ")";
}

// ---- Paths ------------------------------------------------------------------------------------

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

}  // namespace lowbit::io::h5detail
