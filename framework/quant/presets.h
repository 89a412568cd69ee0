// Named quantizer presets (Brevitas names) and their keyword overrides. The catalogue with
// formulas and references is docs/quantizers.md.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/yaml_util.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

std::vector<std::string> preset_names();
// Throws a lowbit::Error listing the presets when `name` is unknown.
QuantizerConfig preset(const std::string& name);

// A quantizer written in a config: a preset or user-defined name, or a map
// {preset: NAME, <override>: value, ...}. Overrides win over the preset. Unknown keys, bad
// values and invalid combinations are errors naming the YAML position.
QuantizerConfig parse_quantizer(const YAML::Node& node, const io::YamlSource& src, const std::string& key,
                                const std::map<std::string, QuantizerConfig>& user_defined);

}  // namespace lowbit::quant
