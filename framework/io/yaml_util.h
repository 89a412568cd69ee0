// Reading YAML with positions: every error names file:line:column and the dotted key.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace lowbit::io {

// Where values come from: a file, plus the dotted keys set on the command line.
struct YamlSource {
  std::string file;
  std::map<std::string, std::string> overrides;  // "train.batch_size" -> "train.batch_size=-1"
  // "file:line:col" for a node read from the file, or "command-line override 'k=v'".
  std::string where(const YAML::Node& node, const std::string& key) const;
};

// Parses a file; a syntax error becomes "file:line:col: YAML syntax error: ...".
YAML::Node load_yaml_file(const std::string& path);

// Typed scalar reads; errors say what was expected and what was found.
double yaml_number(const YAML::Node& n, const YamlSource& src, const std::string& key);
int64_t yaml_int(const YAML::Node& n, const YamlSource& src, const std::string& key);
bool yaml_bool(const YAML::Node& n, const YamlSource& src, const std::string& key);
std::string yaml_string(const YAML::Node& n, const YamlSource& src, const std::string& key);
std::vector<double> yaml_numbers(const YAML::Node& n, const YamlSource& src, const std::string& key);

// Candidates ordered by edit distance to `name` (all of them when <= 12, else the 5 closest).
std::string closest_names(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace lowbit::io
