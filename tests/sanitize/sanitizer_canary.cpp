// Commits one memory or undefined-behaviour error on purpose (argv[1] names it), so the sanitized
// tier can check that AddressSanitizer, LeakSanitizer and UBSan really stop it. Built only with
// -DLOWBIT_SANITIZE=ON; each ctest case expects the sanitizer's report in the output.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
// volatile: the optimizer must not prove the errors away.
volatile int g_index = 8;
volatile int g_big = 2147483647;
volatile int g_offset = 1;
void* volatile g_sink = nullptr;
}  // namespace

int main(int argc, char** argv) {
  const std::string kind = argc > 1 ? argv[1] : "";
  if (kind == "heap_overflow") {
    int* a = new int[8];
    a[g_index] = 1;  // one past the end (object-size is off for this file: ASan must catch it)
    std::printf("%d\n", a[0]);
    delete[] a;
  } else if (kind == "use_after_free") {
    int* a = new int[8];
    delete[] a;
    std::printf("%d\n", a[g_index - 1]);
  } else if (kind == "leak") {
    g_sink = std::malloc(4096);
    std::memset(g_sink, 1, 4096);
    g_sink = nullptr;  // the only pointer to the block is gone
  } else if (kind == "signed_overflow") {
    int x = g_big;
    x += g_offset;
    std::printf("%d\n", x);
  } else if (kind == "misaligned") {
    alignas(8) char buf[16] = {};
    int* p = reinterpret_cast<int*>(buf + g_offset);
    std::printf("%d\n", *p);
  } else {
    std::fprintf(stderr, "usage: sanitizer_canary heap_overflow|use_after_free|leak|signed_overflow|misaligned\n");
    return 2;
  }
  return 0;
}
