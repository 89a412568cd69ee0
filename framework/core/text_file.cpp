#include "core/text_file.h"

#include <fstream>

#include "core/error.h"

namespace lowbit {

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  LB_CHECK(f.good(), "cannot write '", path, "' (does its folder exist and is it writable?)");
  f << text;
  f.close();
  LB_CHECK(f.good(), "cannot write '", path, "' completely (disk full?)");
}

}  // namespace lowbit
