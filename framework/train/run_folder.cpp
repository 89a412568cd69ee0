#include "train/run_folder.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "core/error.h"

#ifndef LOWBIT_GIT_COMMIT
#define LOWBIT_GIT_COMMIT "unknown"
#endif

namespace fs = std::filesystem;

namespace lowbit::train {

namespace {

std::string utc_now(const char* format) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// A double-quoted YAML scalar.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Up to three names of what `dir` holds, for the message.
std::string some_entries(const fs::path& dir) {
  std::string out;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (n == 3) return out + ", ...";
    out += (n++ ? ", " : "") + e.path().filename().string();
  }
  return out;
}

}  // namespace

const char* build_commit() { return LOWBIT_GIT_COMMIT; }

std::string prepare_fresh_run_folder(const std::string& dir, bool force) {
  std::error_code ec;
  const fs::path p(dir);
  if (!fs::exists(p, ec)) return "";
  LB_CHECK(fs::is_directory(p, ec), "run folder '", dir, "' exists and is not a folder: choose another with --out DIR");
  if (fs::directory_iterator(p, ec) == fs::directory_iterator()) return "";  // empty
  if (!force)
    LB_FAIL("run folder '", dir, "' already holds a run (", some_entries(p), "). Continue it with `lowbit train --resume ",
            dir, "`, start over with --force (the old run is moved to ", dir,
            ".old-<time>, nothing is deleted), or train into another folder with --out DIR");
  std::string aside = dir + ".old-" + utc_now("%Y%m%d-%H%M%S");
  for (int k = 2; fs::exists(aside, ec); ++k) aside = dir + ".old-" + utc_now("%Y%m%d-%H%M%S") + "-" + std::to_string(k);
  fs::rename(p, aside, ec);
  LB_CHECK(!ec, "--force: cannot move the old run '", dir, "' to '", aside, "': ", ec.message(),
           " (nothing was changed; move or remove it yourself, or use --out DIR)");
  return aside;
}

void record_invocation(const std::string& dir, const std::string& command_line, bool resumed) {
  const fs::path path = fs::path(dir) / "run_info.yaml";
  const bool fresh = !fs::exists(path);
  std::ofstream f(path, std::ios::app);
  LB_CHECK(f.good(), "cannot write ", path.string());
  if (fresh) f << "# what made this run folder: one entry per `lowbit train` (a resume adds one)\ninvocations:\n";
  char host[256] = "unknown";
  if (gethostname(host, sizeof host) != 0) host[0] = '\0';
  host[sizeof host - 1] = '\0';
  f << "  - command: " << quoted(command_line) << "\n"
    << "    kind: " << (resumed ? "resume" : "fresh") << "\n"
    << "    lowbit: " << quoted(LOWBIT_VERSION) << "\n"
    << "    commit: " << quoted(build_commit()) << "\n"
    << "    host: " << quoted(host) << "\n"
    << "    started: " << quoted(utc_now("%Y-%m-%dT%H:%M:%SZ")) << "\n";
  LB_CHECK(f.good(), "cannot write ", path.string());
}

}  // namespace lowbit::train
