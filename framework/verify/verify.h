// `lowbit verify`: the fake-quant model (eval mode) and its integer network on the same images,
// compared layer by layer on each layer's integer grid and on the top-1 class.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/loader.h"
#include "intnet/engine.h"
#include "verify/integer_model.h"

namespace lowbit::verify {

// One integer value of the network that has a fake-quant counterpart.
struct LayerAgreement {
  std::string name;       // the trained layer (and the value's name)
  std::string op;         // the integer op that writes it
  int value = -1;         // value id in the network
  int bits = 0;
  bool is_signed = true;
  int64_t total = 0, equal = 0;  // integers compared / identical
  int64_t max_diff = 0;          // max |engine - fake-quant| in LSBs of the value's grid
  // The first mismatch (image index in the test split, flat element index within the sample).
  int64_t first_image = -1, first_element = -1;
  int64_t engine_int = 0, fake_quant_int = 0;
  // An accumulator with acc_shift > 0: its grid is finer than the fake-quant model's float32
  // carries, so it is shown but not a divergence (its requantized output is what counts).
  bool finer_than_float = false;
  double fraction() const { return total ? static_cast<double>(equal) / static_cast<double>(total) : 1.0; }
};

struct VerifyResult {
  std::vector<LayerAgreement> layers;  // in network order
  int64_t images = 0;
  int64_t top1_agree = 0;              // images whose fake-quant and integer top-1 classes match
  int64_t integer_ties = 0;            // images whose largest integer logit is shared by two classes or more
  int64_t fake_quant_correct = 0, integer_correct = 0;
  // Index into `layers` of the first layer (network order) whose integers differ; -1: none.
  int first_divergence = -1;
  double agreement() const { return images ? static_cast<double>(top1_agree) / static_cast<double>(images) : 1.0; }
};

// Fake-quant model vs integer network, batch by batch: per-layer integers and top-1 classes.
class Comparison {
 public:
  // `g` is the trained model `lowered` was built from (eval mode).
  Comparison(nn::Graph& g, const deploy::LoweredModel& lowered);
  // Runs one batch x (B, C, H, W) through both; `labels` (s32 (B)) may be undefined.
  // Afterwards the engine holds every value of this batch (engine()) and logits() the batch's
  // fake-quant output.
  void add_batch(const Tensor& x, const Tensor& labels);
  const VerifyResult& result() const { return r_; }
  VerifyResult finish();  // sets first_divergence
  const intnet::Engine& engine() const { return engine_; }
  const Tensor& fake_quant_logits() const { return fq_logits_; }

 private:
  nn::Graph& g_;
  const deploy::LoweredModel& lowered_;
  intnet::Engine engine_;
  VerifyResult r_;
  std::vector<int> layer_of_node_;
  Tensor fq_logits_;
};

struct VerifyOptions {
  // Write DIR/integer_logits.h5 (/logits s32 (N, classes), /scale f64 (classes), /labels s32
  // (N), /fake_quant_logits f32 (N, classes)) and DIR/layers.h5 (every value's integers for
  // the first `dump_layer_images` images: /values/<name> s32 (n, shape...)), the same integers
  // in verify/layer_dump.h's plain format (DIR/layers/), and DIR/integer_logits.txt (the exported
  // runners' line per image).
  std::string dump_dir;
  int64_t dump_layer_images = 16;
};

// Runs every sample of `loader` through both models.
VerifyResult run_verify(IntegerModel& m, data::DataLoader& loader, const VerifyOptions& opt);

// The per-layer table and the first divergence, as `lowbit verify` prints them (without the
// last summary line).
std::string format_report(const IntegerModel& m, const VerifyResult& r);

}  // namespace lowbit::verify
