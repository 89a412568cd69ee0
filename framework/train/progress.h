// tqdm-style progress on stderr:
//   epoch 3/10:  42%|####      | 197/469 [00:03<00:04, 15230 img/s, loss=0.412]
// Redrawn at most 10 times a second on a terminal; without a terminal, only the final line
// of each epoch is printed.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit::train {

class ProgressBar {
 public:
  ProgressBar(std::string desc, int64_t total, bool tty);
  // Advance to `done` batches; `images` processed so far; `postfix` e.g. "loss=0.412".
  void update(int64_t done, int64_t images, const std::string& postfix);
  // Final line (always printed), ending with `postfix`.
  void finish(int64_t images, const std::string& postfix);
  double elapsed() const;

 private:
  std::string render(int64_t done, int64_t images, const std::string& postfix) const;
  std::string desc_;
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t done_ = 0;
};

// True when stderr is a terminal.
bool stderr_is_tty();

}  // namespace lowbit::train
