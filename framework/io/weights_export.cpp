#include "io/weights_export.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/h5_file.h"

namespace lowbit::io {

namespace {

bool is_counter(const std::string& name, const Tensor& t) {
  const std::string suffix = ".num_batches_tracked";
  const bool named = name == "num_batches_tracked" ||
                     (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
  return named && t.dtype() == DType::s32 && t.numel() == 1;
}

void fsync_or_fail(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  LB_CHECK(fd >= 0, "cannot open '", path, "' to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  LB_CHECK(rc == 0 || (directory && (err == EINVAL || err == EROFS)), "fsync of '", path, "' failed: ", std::strerror(err));
}

// Removes the staging file unless released.
struct StageGuard {
  std::string path;
  bool keep = false;
  ~StageGuard() {
    if (!keep) ::unlink(path.c_str());
  }
};

// Adds 0-d int64 datasets (flat names) to the finished HDF5 file at `path`.
void add_int64_scalars(const std::string& path, const std::vector<std::pair<std::string, int64_t>>& values) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  LB_CHECK(file >= 0, "cannot reopen '", path, "' to add the int64 counters");
  bool ok = true;
  std::string failed;
  const hid_t space = H5Screate(H5S_SCALAR);
  for (const auto& [name, v] : values) {
    const hid_t ds = H5Dcreate2(file, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const bool w = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0;
    if (ds >= 0) H5Dclose(ds);
    if (!w) {
      ok = false;
      failed = name;
      break;
    }
  }
  H5Sclose(space);
  const bool flushed = H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0;
  const bool closed = H5Fclose(file) >= 0;
  H5Eclear2(H5E_DEFAULT);
  LB_CHECK(ok, "cannot write '", failed, "' into '", path, "'");
  LB_CHECK(flushed && closed, "cannot finish '", path, "' (disk full?)");
}

}  // namespace

TorchExportResult export_torch_h5(const std::string& checkpoint, const std::string& out) {
  read_checkpoint_info(checkpoint);  // format name and version
  TorchExportResult res;
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    H5Reader r(checkpoint);
    for (const auto& p : r.datasets())
      if (p.compare(0, 7, "/model/") == 0) tensors.emplace_back(H5Reader::dotted(p.substr(6)), r.read_tensor(p));
  }
  LB_CHECK(!tensors.empty(), checkpoint, ": the checkpoint holds no model tensors");

  // Everything but the counters goes through H5Writer (atomically, to a staging file); the
  // counters are added to the staging file, which then replaces `out`.
  StageGuard stage{out + ".part"};
  std::vector<std::pair<std::string, int64_t>> counters;
  {
    H5Writer w(stage.path);
    w.set_attr("/", "exported_by", std::string("lowbit ") + LOWBIT_VERSION + " (lowbit export torch-h5)");
    w.set_attr("/", "source", checkpoint);
    for (const auto& [name, t] : tensors) {
      res.names.push_back(name);
      if (is_counter(name, t)) {
        counters.emplace_back(name, static_cast<int64_t>(t.contiguous().data<int32_t>()[0]));
      } else {
        w.write_tensor(name, t);
      }
    }
    w.commit();
  }
  if (!counters.empty()) add_int64_scalars(stage.path, counters);
  res.int64_scalars = static_cast<int64_t>(counters.size());
  fsync_or_fail(stage.path, false);
  if (::rename(stage.path.c_str(), out.c_str()) != 0)
    LB_FAIL("cannot rename '", stage.path, "' to '", out, "': ", std::strerror(errno));
  stage.keep = true;
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  fsync_or_fail(parent.empty() ? "." : parent.string(), true);
  return res;
}

}  // namespace lowbit::io
