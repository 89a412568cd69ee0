// Errors that carry the source location (file:line) and say what to do.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace lowbit {

// Every user-facing failure is a lowbit::Error. `what()` is the complete message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// `message` without the source locations Lowbit's checks carry ("framework/io/h5_reader.cpp:120: "),
// nested ones too: what users read unless they ask for --debug.
std::string without_source_locations(const std::string& message);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace lowbit

// LB_CHECK(cond, parts...): throws lowbit::Error "file:line: parts..." when cond is false.
#define LB_CHECK(cond, ...)                                                              \
  do {                                                                                   \
    if (!(cond)) ::lowbit::detail::throw_error(__FILE__, __LINE__, ::lowbit::detail::concat(__VA_ARGS__)); \
  } while (0)

// LB_FAIL(parts...): unconditional error with location.
#define LB_FAIL(...) ::lowbit::detail::throw_error(__FILE__, __LINE__, ::lowbit::detail::concat(__VA_ARGS__))
