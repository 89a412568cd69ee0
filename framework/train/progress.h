// tqdm-style progress on stderr:
//   epoch 3/10:  42%|####      | 197/469 [00:03<00:04, 15230 img/s, loss=0.412]
// Redrawn at most 10 times a second on a terminal; without a terminal (a pipe, a log file), one
// line every `every_s` seconds (LOWBIT_PROGRESS_SECONDS, default 30) and the final line of each
// epoch. stop() freezes the clock at the end of training, so the final line's img/s (like
// metrics.csv's) leaves out the evaluation that follows.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit::train {

class ProgressBar {
 public:
  ProgressBar(std::string desc, int64_t total, bool tty, double every_s = piped_interval());
  // Advance to `done` batches; `images` processed so far; `postfix` e.g. "loss=0.412".
  void update(int64_t done, int64_t images, const std::string& postfix);
  // Final line (always printed), ending with `postfix`.
  void finish(int64_t images, const std::string& postfix);
  double elapsed() const;
  // Ends the timed part (training); elapsed() and the final line use this moment.
  void stop();
  // Seconds between lines without a terminal: LOWBIT_PROGRESS_SECONDS (> 0), else 30.
  static double piped_interval();

 private:
  std::string render(int64_t done, int64_t images, const std::string& postfix) const;
  std::string desc_;
  int64_t total_;
  bool tty_;
  double every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_, end_;
  bool stopped_ = false;
  int64_t done_ = 0;
};

// True when stderr is a terminal.
bool stderr_is_tty();

}  // namespace lowbit::train
