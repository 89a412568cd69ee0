#include "train/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace lowbit::train {

namespace {

volatile std::sig_atomic_t g_pending = 0;
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
  if (g_pending != 0) {  // the second one: stop now, as if no handler were installed
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_pending = sig;
  const char msg[] = "\nlowbit: stopping after this step and saving last.h5 (press Ctrl-C again to stop at once)\n";
  const ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_pending = 0;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int pending_interrupt() { return g_pending; }

}  // namespace lowbit::train
