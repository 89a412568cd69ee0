#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace lowbit::train {

bool stderr_is_tty() { return isatty(STDERR_FILENO) != 0; }

ProgressBar::ProgressBar(std::string desc, int64_t total, bool tty, double every_s)
    : desc_(std::move(desc)), total_(total), tty_(tty), every_s_(every_s), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressBar::piped_interval() {
  const char* s = std::getenv("LOWBIT_PROGRESS_SECONDS");
  const double v = s ? std::atof(s) : 0.0;
  return v > 0 ? v : 30.0;
}

double ProgressBar::elapsed() const {
  return std::chrono::duration<double>((stopped_ ? end_ : std::chrono::steady_clock::now()) - start_).count();
}

void ProgressBar::stop() {
  if (stopped_) return;
  end_ = std::chrono::steady_clock::now();
  stopped_ = true;
}

static std::string clock_str(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  int t = static_cast<int>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02d:%02d", t / 60, t % 60);
  return buf;
}

std::string ProgressBar::render(int64_t done, int64_t images, const std::string& postfix) const {
  const double el = elapsed();
  const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int width = 10;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, ' ');
  const double rate = el > 0 ? images / el : 0;
  const double eta = done > 0 ? el * (total_ - done) / done : -1;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: %3d%%|%s| %lld/%lld [%s<%s, %.0f img/s%s%s]", desc_.c_str(),
                static_cast<int>(frac * 100), bar.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                clock_str(el).c_str(), clock_str(eta).c_str(), rate, postfix.empty() ? "" : ", ", postfix.c_str());
  return buf;
}

void ProgressBar::update(int64_t done, int64_t images, const std::string& postfix) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (!tty_) {  // a pipe or a file: a whole line now and then
    if (done >= total_ || now - last_draw_ < std::chrono::duration<double>(every_s_)) return;
    last_draw_ = now;
    std::fprintf(stderr, "%s\n", render(done, images, postfix).c_str());
    std::fflush(stderr);
    return;
  }
  if (now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r%s\033[K", render(done, images, postfix).c_str());
  std::fflush(stderr);
}

void ProgressBar::finish(int64_t images, const std::string& postfix) {
  std::string line = render(done_, images, postfix);
  if (tty_) std::fprintf(stderr, "\r%s\033[K\n", line.c_str());
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace lowbit::train
