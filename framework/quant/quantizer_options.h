// Quantizer options as data: the names of the quantizer enums and one row per YAML option of a
// quantizer (key, the QuantizerConfig field, when `lowbit quantize` shows it, whether a recipe may
// set it, an extra check). parse_quantizer (presets.cpp) reads options through this table and
// quantizer_yaml (resolved_model.cpp) writes them through it, so an option is added in one place:
// see docs/adding-a-quantizer.md.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "quant/quantizer.h"

namespace lowbit::quant {

// ---- Enum names, in enum order ---------------------------------------------------------------

template <typename E>
struct EnumNames;  // specialized below: `names` in enum order, `last` the last enumerator

template <>
struct EnumNames<QuantType> {
  static constexpr std::array<std::string_view, 3> names{"integer", "binary", "ternary"};
  static constexpr QuantType last = QuantType::ternary;
};
template <>
struct EnumNames<ScaleImpl> {
  static constexpr std::array<std::string_view, 5> names{"stats", "running_stats", "parameter",
                                                         "parameter_from_stats", "constant"};
  static constexpr ScaleImpl last = ScaleImpl::constant;
};
template <>
struct EnumNames<ScaleStat> {
  static constexpr std::array<std::string_view, 4> names{"max_abs", "percentile", "min_max", "mean_std"};
  static constexpr ScaleStat last = ScaleStat::mean_std;
};
template <>
struct EnumNames<ScaleRestrict> {
  static constexpr std::array<std::string_view, 3> names{"fp", "log2", "pow2"};
  static constexpr ScaleRestrict last = ScaleRestrict::pow2;
};
template <>
struct EnumNames<kernels::Rounding> {
  static constexpr std::array<std::string_view, 4> names{"half_even", "floor", "ceil", "half_away"};
  static constexpr kernels::Rounding last = kernels::Rounding::half_away;
};

// A name table must have exactly one name per enumerator (a new enumerator fails here).
template <typename E>
constexpr bool names_cover_enum() {
  return static_cast<size_t>(EnumNames<E>::last) + 1 == EnumNames<E>::names.size();
}
static_assert(names_cover_enum<QuantType>() && names_cover_enum<ScaleImpl>() && names_cover_enum<ScaleStat>() &&
              names_cover_enum<ScaleRestrict>() && names_cover_enum<kernels::Rounding>());

template <typename E>
std::string_view enum_name(E e) {
  return EnumNames<E>::names[static_cast<size_t>(e)];
}

template <typename E>
std::optional<E> enum_from_name(std::string_view s) {
  for (size_t i = 0; i < EnumNames<E>::names.size(); ++i)
    if (EnumNames<E>::names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

// "a | b | c" for messages.
template <typename E>
std::string enum_choices() {
  std::string out;
  for (std::string_view n : EnumNames<E>::names) out += (out.empty() ? "" : " | ") + std::string(n);
  return out;
}

// ---- The option table -------------------------------------------------------------------------

using QC = QuantizerConfig;
using OptionField = std::variant<int QC::*, bool QC::*, double QC::*, float QC::*, QuantType QC::*, ScaleImpl QC::*,
                                 ScaleStat QC::*, ScaleRestrict QC::*, kernels::Rounding QC::*>;

struct QuantizerOption {
  std::string_view key;  // the YAML key
  OptionField field;
  bool settable;         // a recipe may set it (false: presets only, shown for information)
  // Whether `lowbit quantize` shows it for this config (options that do not apply are left out).
  bool (*shown)(const QC&);
  // Extra check of a value a recipe set; returns "" or what is wrong ("must be >= 0").
  std::string (*check)(const QC&);
};

// Every option, in the order `lowbit quantize` prints them.
const std::vector<QuantizerOption>& quantizer_options();

// The keys a recipe may write in a quantizer map, for "unknown option" messages.
std::vector<std::string> settable_quantizer_keys();

}  // namespace lowbit::quant
