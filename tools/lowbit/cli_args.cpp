#include "cli_args.h"

#include <cstdio>

namespace po = boost::program_options;

namespace lowbit::cli {

bool parse_command_line(const std::vector<std::string>& args, const std::string& command,
                        const po::options_description& opts, po::variables_map& vm,
                        std::vector<std::string>& positional) {
  po::options_description hidden;
  hidden.add_options()("positional", po::value<std::vector<std::string>>(), "");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "lowbit %s: %s\nRun `lowbit %s --help` for usage.\n", command.c_str(), e.what(),
                 command.c_str());
    return false;
  }
  if (vm.count("positional")) positional = vm["positional"].as<std::vector<std::string>>();
  return true;
}

}  // namespace lowbit::cli
