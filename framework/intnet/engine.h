// The integer engine: runs an integer network (intnet/int_network.h) on a batch, with integer
// arithmetic only after the input quantizer. It is the reference every exporter is compared with
// bit for bit, so each op follows the semantics written in int_network.h exactly; requantization
// uses kernels/common/requant_math.h in the network's rounding mode.
//
// Convolutions and matrix products whose input fits u8 or s8 (and has zero point 0) accumulate
// through oneDNN's int8 primitives where those are exact (kernels/cpu/int8_gemm.h: CPUs with
// VNNI); the rest, and every layer on other CPUs, through the reference loops here. Both give the
// same integers (tests/intnet/test_engine.cpp compares them).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "intnet/int_network.h"

namespace lowbit::intnet {

class Engine {
 public:
  explicit Engine(const Network& net);  // validates the network
  ~Engine();
  // false: reference loops only (to compare the oneDNN path with them).
  void set_use_onednn(bool on) { use_onednn_ = on; }

  // Runs `n` samples of the float input, laid out (n, input_shape...) row-major. With
  // `keep_all`, every value's integers stay available afterwards (per-layer comparison);
  // otherwise only the output is (the buffers are kept for the next run).
  void run(const float* input, int64_t n, bool keep_all = false);

  int64_t batch() const { return n_; }
  // The integers of value `id` from the last run: (n, value.shape...) row-major. Throws when the
  // value was freed (run without keep_all).
  const std::vector<int32_t>& value(int id) const;
  const std::vector<int32_t>& output() const { return value(net_.output); }
  const Network& network() const { return net_; }

 private:
  void run_node(const Node& node, const float* input);
  // The oneDNN int8 path for conv2d / matmul node `k`; false when it does not apply.
  bool run_int8(size_t k, const Node& node);
  struct Int8Kernels;
  std::map<std::pair<size_t, int64_t>, std::shared_ptr<Int8Kernels>> int8_;  // (node, batch) -> primitive
  std::vector<uint8_t> packed_;  // the input as 8-bit integers
  const Network& net_;
  std::vector<std::vector<int32_t>> buffers_;
  std::vector<int> last_use_;  // per value: index of the last node that reads it (-1: none)
  std::vector<bool> alive_;
  int64_t n_ = 0;
  bool use_onednn_ = true;
};

}  // namespace lowbit::intnet
