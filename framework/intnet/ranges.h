// Range analysis of an integer network: for every value, the interval its integers are proven to
// lie in, from the actual integer weights and biases and the input ranges. It is what proves that
// int32 accumulators cannot overflow (or refuses the layer with the numbers).
#pragma once
#include "intnet/int_network.h"

namespace lowbit::intnet {

// Sets lo / hi / bits / is_signed of every computed value (accumulators, sums, pools) and the
// acc_bound / input_bound of conv, matmul and requantize nodes. Throws a lowbit::Error naming the
// node when a worst case does not fit int32, or when a requantization's left shift could overflow.
void prove_ranges(Network& net);

}  // namespace lowbit::intnet
