// Quantizer options as data (quant/quantizer_options.h): enum names round-trip, every preset's
// shown options parse back to the same config, and every settable option set from YAML reaches
// its field and `lowbit quantize`'s output.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <string>

#include "core/error.h"
#include "quant/presets.h"
#include "quant/quantizer_options.h"
#include "quant/resolved_model.h"

namespace {

namespace q = lowbit::quant;
namespace io = lowbit::io;

std::string emit(const YAML::Node& n) {
  YAML::Emitter e;
  e << n;
  return e.c_str();
}

q::QuantizerConfig parse(const std::string& yaml) {
  io::YamlSource src;
  src.file = "test.yaml";
  return q::parse_quantizer(YAML::Load(yaml), src, "quant.weights", {});
}

template <typename E>
void expect_names_round_trip() {
  for (size_t i = 0; i < q::EnumNames<E>::names.size(); ++i) {
    const E e = static_cast<E>(i);
    EXPECT_EQ(q::enum_from_name<E>(q::enum_name(e)), e);
  }
  EXPECT_EQ(q::enum_from_name<E>("no_such_name"), std::nullopt);
}

TEST(QuantizerOptions, EnumNamesRoundTrip) {
  expect_names_round_trip<q::QuantType>();
  expect_names_round_trip<q::ScaleImpl>();
  expect_names_round_trip<q::ScaleStat>();
  expect_names_round_trip<q::ScaleRestrict>();
  expect_names_round_trip<lowbit::kernels::Rounding>();
  EXPECT_EQ(q::enum_choices<q::ScaleRestrict>(), "fp | log2 | pow2");
}

TEST(QuantizerOptions, KeysAreUniqueAndSettableOnesAreListed) {
  std::set<std::string> keys;
  for (const q::QuantizerOption& o : q::quantizer_options()) EXPECT_TRUE(keys.insert(std::string(o.key)).second) << o.key;
  const auto settable = q::settable_quantizer_keys();
  for (const q::QuantizerOption& o : q::quantizer_options()) {
    const bool listed = std::find(settable.begin(), settable.end(), std::string(o.key)) != settable.end();
    EXPECT_EQ(listed, o.settable) << o.key;
  }
}

// What `lowbit quantize` shows for a preset, written back as a recipe entry (its settable keys),
// parses to a config that shows the same.
TEST(QuantizerOptions, EveryPresetRoundTripsThroughItsShownOptions) {
  for (const std::string& name : q::preset_names()) {
    const q::QuantizerConfig c = q::preset(name);
    const YAML::Node shown = q::quantizer_yaml(c);
    YAML::Node entry;
    entry["preset"] = name;
    for (const q::QuantizerOption& o : q::quantizer_options())
      if (o.settable && shown[std::string(o.key)]) entry[std::string(o.key)] = shown[std::string(o.key)];
    const q::QuantizerConfig back = parse(emit(entry));
    EXPECT_EQ(emit(q::quantizer_yaml(back)), emit(shown)) << name;
  }
}

// Each settable option given in YAML lands in the config (shown with the new value).
TEST(QuantizerOptions, EverySettableOptionReachesItsField) {
  struct Case { const char* yaml; const char* key; const char* shown; };
  const Case cases[] = {
      {"{preset: Int8ActPerTensorFloat, bits: 5}", "bits", "5"},
      {"{preset: Int8ActPerTensorFloat, learned_bits: true}", "learned_bits", "true"},
      {"{preset: Int8ActPerTensorFloat, signed: false}", "signed", "false"},
      {"{preset: Int8ActPerTensorFloat, narrow: true}", "narrow", "true"},
      {"{preset: Int8WeightPerTensorFloat, per_channel: true}", "per_channel", "true"},
      {"{preset: Int8WeightPerTensorFloat, external_scale: true}", "external_scale", "true"},
      {"{preset: Uint8ActPerTensorFloat, asym_clip: true}", "asym_clip", "true"},
      {"{preset: Int8ActPerTensorFloat, scale_impl: running_stats}", "scale_impl", "running_stats"},
      {"{preset: Int8ActPerTensorFloat, stat: min_max}", "stat", "min_max"},
      {"{preset: Int8ActPerTensorFloat, percentile: 99.9}", "percentile", "99.9"},
      {"{preset: Int8ActPerTensorFloat, stat: mean_std, std_k: 2.5}", "std_k", "2.5"},
      {"{preset: Int8ActPerTensorFloat, restrict: log2}", "restrict", "log2"},
      {"{preset: Int8ActPerTensorFloatMinMaxInit, scale_init: 4}", "scale_init", "4"},
      {"{preset: Int8ActPerTensorFloat, collect_steps: 7}", "collect_steps", "7"},
      {"{preset: Int8ActPerTensorFloat, momentum: 0.25}", "momentum", "0.25"},
      {"{preset: Int8ActPerTensorFloat, scale_impl: stats, stat: min_max, zero_point: true}", "zero_point", "true"},
      {"{preset: Int8ActPerTensorFloat, rounding: floor}", "rounding", "floor"},
      {"{preset: Int8ActPerTensorFloat, reciprocal: true}", "reciprocal", "true"},
      {"{preset: Int8ActPerTensorFloat, ste_clamp: true}", "ste_clamp", "true"},
      {"{preset: Int8WeightLSQ, lsq_grad_scale: false}", "lsq_grad_scale", "false"},
      {"{preset: Int8ActPerTensorFloat, weight_decay: 0.01}", "weight_decay", "0.01"},
      {"{preset: SignedBinaryActPerTensorConst, binary_clip: 2}", "binary_clip", "2"},
      {"{preset: SignedTernaryWeightPerTensorStats, ternary_threshold: 0.25}", "ternary_threshold", "0.25"},
  };
  std::set<std::string> covered;
  for (const Case& c : cases) {
    const YAML::Node shown = q::quantizer_yaml(parse(c.yaml));
    ASSERT_TRUE(shown[c.key]) << c.yaml << " does not show " << c.key;
    EXPECT_EQ(shown[c.key].as<std::string>(), c.shown) << c.yaml;
    covered.insert(c.key);
  }
  for (const q::QuantizerOption& o : q::quantizer_options())
    if (o.settable) {
      EXPECT_TRUE(covered.count(std::string(o.key))) << "no case sets " << o.key;
    }
}

TEST(QuantizerOptions, BadValuesAreRefusedWithTheKeyAndTheChoices) {
  auto error_of = [](const std::string& yaml) {
    try {
      parse(yaml);
    } catch (const lowbit::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of("{preset: Int8ActPerTensorFloat, stat: maxabs}").find(
                "quant.weights.stat: unknown value 'maxabs' (choose max_abs | percentile | min_max | mean_std)"),
            std::string::npos);
  EXPECT_NE(error_of("{preset: Int8ActPerTensorFloat, weight_decay: -1}").find("weight decay must be a finite number >= 0, got -1"),
            std::string::npos);
  // Shown but not settable (presets only): an unknown option for a recipe.
  EXPECT_NE(error_of("{preset: Int8WeightLSQ, lsq: true}").find("unknown quantizer option 'lsq'"), std::string::npos);
  EXPECT_NE(error_of("{preset: Int8ActPerTensorFloat, bits: many}").find("quant.weights.bits"), std::string::npos);
}

}  // namespace
