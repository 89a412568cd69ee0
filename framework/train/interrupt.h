// Graceful Ctrl-C for training: while an InterruptGuard lives, the first SIGINT or SIGTERM is
// only recorded (the trainer finishes its step, writes last.h5 atomically and stops), and a
// second one ends the process at once with the default action (last.h5 stays intact: every
// checkpoint is written to a temporary file and renamed).
#pragma once

namespace lowbit::train {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers (SIGINT, SIGTERM)
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// The signal received while a guard is installed (SIGINT or SIGTERM), or 0.
int pending_interrupt();

}  // namespace lowbit::train
