#include "data/gz_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "core/error.h"

namespace lowbit::data::detail {

GzReader::GzReader(const std::string& path, const std::string& hint) : path_(path) {
  // open() ourselves so errno reliably says why a file cannot be opened.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    LB_FAIL("cannot open ", path, ": ", std::strerror(err), hint.empty() ? "" : "; ", hint);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    LB_FAIL("cannot open ", path, ": ", std::strerror(EISDIR), hint.empty() ? "" : "; ", hint);
  }
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    ::close(fd);
    LB_FAIL("cannot open ", path, ": zlib could not allocate a reader");
  }
  gzbuffer(gz, 1u << 17);
  gz_ = gz;
}

GzReader::~GzReader() {
  if (gz_) gzclose_r(static_cast<gzFile>(gz_));
}

size_t GzReader::read(void* dst, size_t n) {
  gzFile gz = static_cast<gzFile>(gz_);
  size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
    const int got = gzread(gz, static_cast<char*>(dst) + done, chunk);
    int errnum = Z_OK;
    const char* msg = gzerror(gz, &errnum);
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
      if (errnum == Z_ERRNO) LB_FAIL("cannot read ", path_, ": ", std::strerror(errno));
      LB_FAIL("cannot read ", path_, ": corrupt or truncated gzip data (zlib: ", msg ? msg : "unknown error", ") after ",
              done, " bytes");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

std::vector<uint8_t> GzReader::read_rest() {
  std::vector<uint8_t> out;
  size_t chunk = 1u << 16;
  for (;;) {
    const size_t old = out.size();
    out.resize(old + chunk);
    const size_t got = read(out.data() + old, chunk);
    out.resize(old + got);
    if (got < chunk) break;
    chunk = std::min<size_t>(chunk * 2, size_t{1} << 26);
  }
  return out;
}

}  // namespace lowbit::data::detail
