// Writing a whole text file, with errors that name it.
#pragma once
#include <string>

namespace lowbit {

// Writes `text` to `path` (replacing it). Throws a lowbit::Error naming the file when it cannot be
// opened or written completely (a full disk).
void write_text_file(const std::string& path, const std::string& text);

}  // namespace lowbit
