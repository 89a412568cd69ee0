// Quantizer: one fake-quantization step with its scale (and zero point) policy, as an
// nn::Module so its learned parameters and statistics are named, trained and checkpointed
// ("conv1.weight_quant.value", "relu1.act_quant.stat_buffer", ...). docs/quantizers.md lists
// the presets built from these options and the reference each one follows.
#pragma once
#include <string>

#include "kernels/common/fake_quant_math.h"
#include "nn/module.h"

namespace lowbit::quant {

enum class QuantType { integer, binary, ternary };
enum class ScaleImpl {
  stats,                 // recomputed from the tensor every forward (weights)
  running_stats,         // batch statistic in training, running average (momentum) in eval
  parameter,             // learned, initialized from scale_init
  parameter_from_stats,  // statistics for collect_steps training calls, then learned
  constant,              // fixed scale_init
};
enum class ScaleStat { max_abs, percentile, min_max, mean_std };
enum class ScaleRestrict { fp, log2, pow2 };

struct QuantizerConfig {
  std::string name = "custom";  // preset (or user quantizer) name, for messages
  QuantType type = QuantType::integer;
  int bits = 8;
  bool is_signed = true;
  bool narrow = false;           // signed: [-(2^(b-1)-1), 2^(b-1)-1]; unsigned: [0, 2^b - 2]
  bool per_channel = false;
  int channel_axis = 0;          // 0 for weights (C_out, ...), 1 for activations (N, C, H, W)
  ScaleImpl scale_impl = ScaleImpl::stats;
  ScaleStat stat = ScaleStat::max_abs;
  double percentile = 99.999;    // ScaleStat::percentile (Brevitas' k-th smallest |x|)
  double std_k = 3.0;            // ScaleStat::mean_std
  ScaleRestrict restrict_to = ScaleRestrict::fp;
  kernels::Rounding rounding = kernels::Rounding::half_even;
  bool reciprocal = false;       // compute x * (1/s) like PyTorch instead of x / s like Brevitas
  bool zero_point = false;       // asymmetric: scale and zero point from min/max
  bool ste_clamp = false;        // the clamp passes gradient to x (Brevitas weights)
  double scale_init = 1.0;       // parameter/constant: the threshold value (scale * T); lsq: the scale
  int collect_steps = 300;       // parameter_from_stats
  double momentum = 0.1;         // running statistics
  bool lsq = false;              // the parameter is the scale itself (LSQ)
  bool lsq_grad_scale = false;   // LSQ's gradient factor 1/sqrt(numel * qmax)
  bool pact = false;             // PACT: clamp to [0, alpha] before rounding; alpha gradient from clipped values only
  float binary_clip = 0.f;       // binary: STE only where |x| <= clip (0 = everywhere)
  float ternary_threshold = 0.5f;
};

// Integer range and threshold T (the value the scale statistic is divided by).
int64_t quant_min(const QuantizerConfig& c);
int64_t quant_max(const QuantizerConfig& c);
double quant_threshold(const QuantizerConfig& c);
// Throws a lowbit::Error naming `where` and the bad option (bit width 0 or > 32, binary with a
// zero point, ...).
void validate(const QuantizerConfig& c, const std::string& where);

// What a quantized tensor carries downstream (Brevitas' QuantTensor metadata).
struct QuantMeta {
  Tensor scale;       // (C) or (1)
  Tensor zero_point;  // same shape, or undefined (0)
  int bits = 0;
  bool is_signed = true;
  int axis = -1;      // channel axis of per-channel scales, -1 per tensor
  bool valid() const { return scale.defined(); }
};

class Quantizer : public nn::Module {
 public:
  // channels: number of per-channel scales (1 for per-tensor quantizers).
  explicit Quantizer(QuantizerConfig cfg, int64_t channels = 1);
  Variable forward(const Variable& x) override;
  Shape infer_shape(const std::vector<Shape>& in) const override { return in.at(0); }
  std::string type_name() const override { return "quantizer"; }
  const QuantizerConfig& config() const { return cfg_; }
  // Metadata of the last forward (scale, zero point, bits).
  const QuantMeta& meta() const { return meta_; }
  // Current scale without running a forward when it does not depend on the input (learned or
  // constant scales, or statistics already collected); undefined otherwise.
  Tensor current_scale() const;

 private:
  Variable scale_for(const Variable& x, Tensor& zero_point);
  Tensor batch_stat(const Tensor& x) const;
  QuantizerConfig cfg_;
  int axis_;
  double threshold_;
  Variable value_;              // learned parameter (threshold, or scale for LSQ, or log2 for log2 restriction)
  Tensor* stat_buffer_ = nullptr;   // running / collected statistic (C)
  Tensor* counter_ = nullptr;       // collection steps done (s32 [1])
  QuantMeta meta_;
};

}  // namespace lowbit::quant
