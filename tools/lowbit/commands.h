// Subcommands of the `lowbit` tool. Each takes the arguments after its name and returns the
// process exit code (0 ok, 1 user error, 2 usage error).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::cli {

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_inspect(const std::vector<std::string>& args);
int cmd_plan(const std::vector<std::string>& args);
int cmd_import(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);
int cmd_quantize(const std::vector<std::string>& args);
int cmd_calibrate(const std::vector<std::string>& args);
int cmd_verify(const std::vector<std::string>& args);
// `lowbit inspect RUN --integer`: the run's integer network, one line per node.
int inspect_integer(const std::string& run, const std::string& rounding);
// `lowbit export mcu`: the integer network of `run` as a C99 project in `out` (tools/lowbit/export_mcu.cpp).
int export_mcu(const std::string& run, const std::string& out, const std::string& rounding, int64_t images, bool measure);

// A --weights argument: a checkpoint file, or a run folder's best.h5 (else its last.h5).
// Throws lowbit::Error when there is none.
std::string weights_file(const std::string& file_or_run_dir);

}  // namespace lowbit::cli
