// One thread count for our OpenMP kernels and oneDNN (which uses the same OpenMP runtime).
#pragma once

namespace lowbit {

// n <= 0 keeps the runtime default. Applies to the calling thread's parallel regions.
void set_num_threads(int n);
int num_threads();

}  // namespace lowbit
