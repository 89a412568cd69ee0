// Graceful Ctrl-C (train/interrupt.h): the first SIGINT/SIGTERM is only recorded while a guard
// lives, a second one ends the process with the default action, and the previous handlers come
// back when the guard goes. (The trainer's use of it: tests/cli/interrupt.sh.)
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "train/interrupt.h"

namespace {

using lowbit::train::InterruptGuard;
using lowbit::train::pending_interrupt;

TEST(Interrupt, FirstSignalIsRecordedNotFatal) {
  {
    InterruptGuard guard;
    EXPECT_EQ(pending_interrupt(), 0);
    std::raise(SIGTERM);
    EXPECT_EQ(pending_interrupt(), SIGTERM);
  }
  InterruptGuard again;  // a new guard starts clean
  EXPECT_EQ(pending_interrupt(), 0);
}

TEST(Interrupt, SecondSignalEndsTheProcessAtOnce) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    InterruptGuard guard;
    std::raise(SIGINT);  // recorded
    std::raise(SIGINT);  // the default action: the process ends here
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited normally with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

TEST(Interrupt, PreviousHandlersComeBack) {
  static volatile std::sig_atomic_t seen = 0;
  auto previous = std::signal(SIGTERM, [](int) { seen = 1; });
  {
    InterruptGuard guard;
    std::raise(SIGTERM);
    EXPECT_EQ(seen, 0);
  }
  std::raise(SIGTERM);
  EXPECT_EQ(seen, 1);
  std::signal(SIGTERM, previous);
}

}  // namespace
