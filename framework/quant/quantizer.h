// Quantizer: one fake-quantization step with its scale (and zero point) policy, as an
// nn::Module so its learned parameters and statistics are named, trained and checkpointed
// ("conv1.weight_quant.value", "relu1.act_quant.stat_buffer", ...). docs/quantizers.md lists
// the presets built from these options and the reference each one follows.
#pragma once
#include <string>

#include "kernels/common/fake_quant_math.h"
#include "nn/module.h"
#include "quant/qat_ops.h"

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
  // parameter_from_stats, Brevitas' two classes: true (activations, ParameterFromRuntimeStats-
  // Scaling): calls 1..collect_steps collect; the buffer is handed to the learned value at the start
  // of call collect_steps + 1, which leaves collect_count at collect_steps + 1. false (weights, set
  // by QuantWeightLayer): the value is set by call collect_steps itself (count collect_steps).
  bool runtime_stats = true;
  double momentum = 0.1;         // running statistics
  bool lsq = false;              // the parameter is the scale itself (LSQ)
  bool lsq_grad_scale = false;   // LSQ's gradient factor 1/sqrt(numel * qmax)
  bool pact = false;             // PACT: clamp to [0, alpha] before rounding; alpha gradient from clipped values only
  // PerLayerAsymPACT (Rusci et al. 2019): learned lower and upper clipping bounds ("clip_lo",
  // "clip_hi", started at min(x, 0) and max(x, 0) of the first forward), PACT gradients, and
  // unsigned integers [0, 2^b - 1] with s = (hi - lo) / (2^b - 1), zero point round(-lo / s).
  bool asym_clip = false;
  // Weight decay of this quantizer's learned parameters (threshold / alpha / scale, bit offset);
  // negative: the optimizer's. PACT's alpha has its own L2 term in the paper.
  double weight_decay = -1.0;
  float binary_clip = 0.f;       // binary: STE only where |x| <= clip (0 = everywhere)
  float ternary_threshold = 0.5f;
  // Learned bit width (Brevitas): bits = round_ste(|offset| + 2), offset a parameter
  // ("bit_offset") initialized to bits - 2; forces the non-STE clamp. Integer quantizers only.
  bool learned_bits = false;
  // Bias with external scale (Int8Bias/Int16Bias/Int32Bias): s = s_in * s_w per output channel,
  // taken from the layer's input and weight quantizers; no statistic of its own.
  bool external_scale = false;
  std::string preset;            // the registry preset this config started from ("" for none)
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
  Shape shape;        // shape of the quantized tensor (N, ...)
  Variable scale_var; // the scale as computed in the forward (gradient reaches learned scales); may be undefined
  std::string source; // quantizer (or layer) the metadata comes from, for messages
  std::string why;    // when invalid: why there is no metadata
  bool valid() const { return scale.defined(); }
  static QuantMeta none(std::string why) {
    QuantMeta m;
    m.why = std::move(why);
    return m;
  }
};

class Quantizer : public nn::Module {
 public:
  // channels: number of per-channel scales (1 for per-tensor quantizers).
  explicit Quantizer(QuantizerConfig cfg, int64_t channels = 1);
  Variable forward(const Variable& x) override;
  // A clamping activation (relu: lo 0, hi inf; relu6 / hardtanh: [lo, hi]) and this quantizer in
  // one pass: y = fq(clamp(x, lo, hi)), the activation's gradient mask folded into dx; bit for
  // bit the unfused result. Only while the scale does not come from this input
  // (fuses_activation(): learned or constant scales, collection finished, not calibrating).
  bool fuses_activation() const;
  Variable forward_after_activation(const Variable& x, float lo, float hi);
  // External scale (bias quantizers with external_scale): quantize x with `scale` ((C) or (1)).
  Variable forward_with_scale(const Variable& x, const Variable& scale);
  // Shared quantizer: one scale for all of xs (computed from all of them when it is a
  // statistic), applied to each; the inputs of an add or a concat then share a grid.
  std::vector<Variable> forward_shared(const std::vector<Variable>& xs);
  Shape infer_shape(const std::vector<Shape>& in) const override { return in.at(0); }
  nn::LayerKind kind() const override { return nn::LayerKind::quantizer; }
  const QuantizerConfig& config() const { return cfg_; }
  // Metadata of the last forward (scale, zero point, bits).
  const QuantMeta& meta() const { return meta_; }
  // Current scale without running a forward when it does not depend on the input (learned or
  // constant scales, or statistics already collected); undefined otherwise.
  Tensor current_scale() const;

  // Where the quantizer sits in the model ("conv1.weight_quant"), for messages; set by
  // assign_quantizer_paths().
  void set_path(std::string p) { path_ = std::move(p); }
  const std::string& path() const { return path_; }
  // "quantizer conv1.weight_quant (Int8WeightPerChannelFloat)".
  std::string describe() const;

  // Bit width now: the learned one (round(|offset| + 2)) or the configured one.
  int current_bits() const;
  // Learned bit width of the last training forward, connected to the offset parameter
  // (undefined without learned_bits or before a forward).
  const Variable& bits_variable() const { return bits_var_; }

  // Post-training calibration: while on, statistic-based scales (running statistics and
  // parameters-from-statistics) collect their statistic in every forward, whatever the module
  // mode; finish_calibration() hands the collected statistic to the learned parameter.
  void set_calibrating(bool on) { calibrating_ = on; }
  void finish_calibration();
  // Re-initializes a learned (or collected) scale from the statistic of `x` (e.g. the folded
  // weights when batch-norm folding starts). Statistics-based scales need nothing.
  void reset_from(const Tensor& x);

 private:
  struct Range {  // integer range and threshold of this forward
    float qmin = 0, qmax = 0;
    double threshold = 1;
    int bits = 0;
    bool learned = false;  // from the learned bit width of this forward (bits_var_)
  };
  Range range();
  Variable scale_for(const Variable& x, Tensor& zero_point, const Range& r);
  Variable to_scale(const Variable& v, bool is_log2_param, const Range& r) const;
  // Fake-quantizes x; `scale` receives the scale used (for the metadata).
  // in_lo / in_hi: a fused clamping activation in front (infinite: none).
  Variable quantize(const Variable& x, const Variable& s, const Tensor& zp, const Range& r, int axis, Variable& scale,
                    float in_lo = -INFINITY, float in_hi = INFINITY);
  LearnedBitsForm learned_form() const;
  void record_meta(const Variable& s, const Tensor& zp, const Range& r, const Shape& shape, int axis);
  // The scale statistic of x (floored at 1e-10), differentiable; batch_stat without gradient.
  Variable stat_of(const Variable& x) const;
  Tensor batch_stat(const Tensor& x) const;
  Variable forward_asym_clip(const Variable& x);
  // value <- the learned parameter for statistic `stat` ((C) or (1)): the threshold, its log2,
  // or (LSQ) the scale.
  void set_value_from_stat(const Tensor& stat, const Range& r);
  // Whether this forward's scale is a statistic of its input (stats, running statistics,
  // parameter-from-stats still collecting).
  bool scale_from_data() const;
  void check_scale(const Variable& s) const;
  bool collecting() const { return training_ || calibrating_; }
  // parameter_from_stats: collect_count once the learned value has taken over.
  int32_t handed_over_count() const { return cfg_.collect_steps + (cfg_.runtime_stats ? 1 : 0); }
  QuantizerConfig cfg_;
  int axis_;
  double threshold_;
  Variable value_;              // learned parameter (threshold, or scale for LSQ, or log2 for log2 restriction)
  Variable bit_offset_;         // learned bit width: bits = round(|offset| + 2)
  Variable clip_lo_, clip_hi_;  // asym_clip: learned bounds (C)
  Tensor* clip_init_ = nullptr; // asym_clip: 1 once the bounds were set from a tensor (s32 [1])
  Variable bits_var_;
  Tensor* stat_buffer_ = nullptr;   // running / collected statistic (C)
  Tensor* counter_ = nullptr;       // collection steps done (s32 [1])
  QuantMeta meta_;
  std::string path_;
  bool calibrating_ = false;
};

// Sets every quantizer's path (its module name below `root`).
void assign_quantizer_paths(nn::Module& root);
// Every quantizer below `root` with its path.
std::vector<std::pair<std::string, Quantizer*>> quantizers_of(nn::Module& root);

}  // namespace lowbit::quant
