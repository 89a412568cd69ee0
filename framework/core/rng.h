// Portable random numbers: the same seed gives the same numbers with any standard library
// (std:: distributions are implementation-defined, so they are not used).
#pragma once
#include <cstdint>

namespace lowbit {

// xoshiro256** seeded through splitmix64. Streams for separate purposes (init, shuffle,
// augmentation, dropout) are derived with Rng::derive(seed, stream_id).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  static Rng derive(uint64_t seed, uint64_t stream) { return Rng(seed * 0x9E3779B97F4A7C15ULL + stream * 0xD1B54A32D192ED03ULL + 1); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 24 bits of precision (exactly representable in float).
  float uniform();
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Integer uniform in [0, n) without modulo bias.
  uint64_t below(uint64_t n);
  // Standard normal through Box-Muller on doubles.
  float normal();
  // Full state, for checkpoints.
  struct State { uint64_t s[4]; };
  State state() const { return {{s_[0], s_[1], s_[2], s_[3]}}; }
  void set_state(const State& st) { for (int i = 0; i < 4; ++i) s_[i] = st.s[i]; }

 private:
  uint64_t s_[4];
};

}  // namespace lowbit
