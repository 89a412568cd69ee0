#include "util/needs.h"

#include <cstdlib>
#include <filesystem>
#include <map>

namespace lowbit::testing {

namespace {
const char* kPython = "/usr/bin/python3";  // Debian's interpreter: the one python3-torch installs into
const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

// "torch, numpy" -> "python3-torch python3-numpy" (Debian's package names for these modules).
std::string debian_packages(const std::string& modules) {
  std::string out, name;
  for (size_t i = 0; i <= modules.size(); ++i) {
    const char c = i < modules.size() ? modules[i] : ',';
    if (c != ',' && c != ' ') { name.push_back(c); continue; }
    if (name.empty()) continue;
    if (!out.empty()) out.push_back(' ');
    out.append("python3-").append(name);
    name.clear();
  }
  return out;
}
}  // namespace

const std::string& python_with(const std::string& modules, std::string* why) {
  struct Probe { std::string path, reason; };
  static std::map<std::string, Probe> probes;
  auto [it, fresh] = probes.try_emplace(modules);
  if (fresh) {
    const std::string cmd = std::string(kPython) + " -c 'import " + modules + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) it->second.path = kPython;
    else
      it->second.reason = std::string(kPython) + " cannot import " + modules + " (apt-get install " +
                          debian_packages(modules) + ", or run scripts/install-deps.sh)";
  }
  if (why) *why = it->second.reason;
  return it->second.path;
}

const std::string& fashion_mnist_dir(std::string* why) {
  static std::string path, reason;
  static bool probed = false;
  if (!probed) {
    probed = true;
    bool all = true;
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
      all = all && std::filesystem::exists(std::filesystem::path(kFashionMnist) / f);
    if (all) path = kFashionMnist;
    else reason = std::string("Fashion-MNIST not found in ") + kFashionMnist + " (apt-get install dataset-fashion-mnist)";
  }
  if (why) *why = reason;
  return path;
}

bool required_by_env(const char* var) {
  const char* v = std::getenv(var);
  return v && std::string(v) == "1";
}

}  // namespace lowbit::testing
