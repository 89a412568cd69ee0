// Command-line parsing shared by the subcommands: named options plus free positional arguments.
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace lowbit::cli {

// Parses `args` against `opts`; every positional argument goes to `positional` in order.
// On a usage error prints "lowbit COMMAND: <problem>" and a --help hint to stderr and
// returns false (the caller exits with 2).
bool parse_command_line(const std::vector<std::string>& args, const std::string& command,
                        const boost::program_options::options_description& opts,
                        boost::program_options::variables_map& vm, std::vector<std::string>& positional);

}  // namespace lowbit::cli
