#include "core/error.h"

#include <cstring>
#include <regex>

namespace lowbit {

std::string without_source_locations(const std::string& message) {
  static const std::regex location(R"((framework|kernels|tools|data|tests|bench)/[A-Za-z0-9_./-]+\.(cpp|h|cu):[0-9]+: )");
  return std::regex_replace(message, location, "");
}

}  // namespace lowbit

namespace lowbit::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  // Keep only the path below the repository's top folders so messages stay short.
  const char* shown = file;
  for (const char* top : {"framework/", "kernels/", "tools/", "data/", "tests/"}) {
    if (const char* p = std::strstr(file, top)) { shown = p; break; }
  }
  throw Error(std::string(shown) + ":" + std::to_string(line) + ": " + msg);
}

}  // namespace lowbit::detail
