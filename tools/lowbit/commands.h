// Subcommands of the `lowbit` tool. Each takes the arguments after its name and returns the
// process exit code (0 ok, 1 user error, 2 usage error).
#pragma once
#include <string>
#include <vector>

namespace lowbit::cli {

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_inspect(const std::vector<std::string>& args);
int cmd_plan(const std::vector<std::string>& args);

}  // namespace lowbit::cli
