// The integer engine: runs an integer network (intnet/int_network.h) on a batch, with integer
// arithmetic only after the input quantizer. It is the reference every exporter is compared with
// bit for bit, so each op follows the semantics written in int_network.h exactly; requantization
// uses kernels/common/requant_math.h in the network's rounding mode.
#pragma once
#include <cstdint>
#include <vector>

#include "intnet/int_network.h"

namespace lowbit::intnet {

class Engine {
 public:
  explicit Engine(const Network& net);  // validates the network

  // Runs `n` samples of the float input, laid out (n, input_shape...) row-major. With
  // `keep_all`, every value's integers stay available afterwards (per-layer comparison);
  // otherwise intermediate values are freed once no later node reads them.
  void run(const float* input, int64_t n, bool keep_all = false);

  int64_t batch() const { return n_; }
  // The integers of value `id` from the last run: (n, value.shape...) row-major. Throws when the
  // value was freed (run without keep_all).
  const std::vector<int32_t>& value(int id) const;
  const std::vector<int32_t>& output() const { return value(net_.output); }
  const Network& network() const { return net_; }

 private:
  void run_node(const Node& node, const float* input);
  const Network& net_;
  std::vector<std::vector<int32_t>> buffers_;
  std::vector<int> last_use_;  // per value: index of the last node that reads it (-1: none)
  std::vector<bool> alive_;
  int64_t n_ = 0;
};

}  // namespace lowbit::intnet
