#include "core/error.h"

#include <cstring>

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
