#include "io/yaml_util.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/strings.h"

namespace lowbit::io {

std::string YamlSource::where(const YAML::Node& node, const std::string& key) const {
  auto it = overrides.find(key);
  if (it != overrides.end()) return "command-line override '" + it->second + "'";
  YAML::Mark m = node.Mark();
  if (m.is_null() || m.line < 0) return file + " (default value of " + key + ")";
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

YAML::Node load_yaml_file(const std::string& path) {
  std::error_code ec;
  LB_CHECK(std::filesystem::is_regular_file(path, ec), "cannot open config file '", path, "': no such file");
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    LB_FAIL(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  } catch (const YAML::BadFile&) {
    LB_FAIL("cannot read config file '", path, "'");
  }
}

double yaml_number(const YAML::Node& n, const YamlSource& src, const std::string& key) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0' && std::isfinite(v)) return v;
  }
  LB_FAIL(src.where(n, key), ": ", key, ": expected a number, got '", n.IsScalar() ? n.Scalar() : std::string("a list or map"), "'");
}

int64_t yaml_int(const YAML::Node& n, const YamlSource& src, const std::string& key) {
  double v = yaml_number(n, src, key);
  LB_CHECK(v == std::floor(v) && std::fabs(v) < 9e15, src.where(n, key), ": ", key, ": expected an integer, got '",
           n.Scalar(), "'");
  return static_cast<int64_t>(v);
}

bool yaml_bool(const YAML::Node& n, const YamlSource& src, const std::string& key) {
  if (n.IsScalar()) {
    std::string s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  }
  LB_FAIL(src.where(n, key), ": ", key, ": expected true or false, got '", n.IsScalar() ? n.Scalar() : std::string("a list or map"), "'");
}

std::string yaml_string(const YAML::Node& n, const YamlSource& src, const std::string& key) {
  LB_CHECK(n.IsScalar(), src.where(n, key), ": ", key, ": expected a string");
  return n.Scalar();
}

std::vector<double> yaml_numbers(const YAML::Node& n, const YamlSource& src, const std::string& key) {
  std::vector<double> out;
  if (n.IsScalar()) return {yaml_number(n, src, key)};
  LB_CHECK(n.IsSequence(), src.where(n, key), ": ", key, ": expected a list of numbers");
  for (size_t i = 0; i < n.size(); ++i) out.push_back(yaml_number(n[i], src, key + "[" + std::to_string(i) + "]"));
  return out;
}


namespace {

// Whether `abbrev` is an abbreviation of `name`: the same first letter, then its letters in order
// ("lr" of "learning_rate", "bs" of "batch_size").
bool abbreviates(const std::string& abbrev, const std::string& name) {
  if (abbrev.empty() || name.empty() || abbrev[0] != name[0] || abbrev.size() >= name.size()) return false;
  size_t j = 0;
  for (char c : name)
    if (j < abbrev.size() && c == abbrev[j]) ++j;
  return j == abbrev.size();
}

}  // namespace

std::string closest_names(const std::string& name, const std::vector<std::string>& candidates) {
  // Ranked by (kind of match, edit distance): a name containing the other or abbreviating it
  // comes before plain spelling distance ("learning_rate" -> "lr" first).
  std::vector<std::pair<std::pair<int, size_t>, std::string>> scored;
  for (const auto& c : candidates) {
    const bool related = !name.empty() && !c.empty() &&
                         (name.find(c) != std::string::npos || c.find(name) != std::string::npos ||
                          abbreviates(c, name) || abbreviates(name, c));
    scored.push_back({{related ? 0 : 1, edit_distance(name, c)}, c});
  }
  std::sort(scored.begin(), scored.end());
  std::string out;
  // Short lists are shown whole (closest first); long ones are cut to the 5 closest.
  const size_t shown = scored.size() <= 12 ? scored.size() : 5;
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + scored[i].second;
  if (shown < scored.size()) out += ", ...";
  return out;
}

}  // namespace lowbit::io
