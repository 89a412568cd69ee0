// Run-folder safety: a fresh run never mixes with an earlier one in the same folder, and every
// run folder says what made it (run_info.yaml: command line, lowbit version, git commit, host,
// time; one entry per invocation, so resumes are listed too).
#pragma once
#include <string>

namespace lowbit::train {

// Before a fresh run into `dir`: an empty or missing folder is used as it is. A folder holding
// anything is refused (the message names the folder and the choices: --resume, --force, --out),
// unless `force`: then it is renamed to `<dir>.old-<UTC time>` (nothing is deleted) and a new
// empty folder takes its place. Returns the path the old run moved to, or "".
std::string prepare_fresh_run_folder(const std::string& dir, bool force);

// Appends this invocation to `dir`/run_info.yaml (created on the first run).
void record_invocation(const std::string& dir, const std::string& command_line, bool resumed);

// The lowbit build's git commit ("unknown" outside a git checkout).
const char* build_commit();

}  // namespace lowbit::train
