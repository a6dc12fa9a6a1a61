// Counter-based random streams (WAS-SPEC §4).
//
// Every draw of the method comes from a stream keyed by (seed, domain, layer,
// step), never from a stateful generator: a run is reproducible bit for bit, a
// resumed run draws exactly what an uninterrupted one would have drawn, and
// ranks of a data-parallel run agree without communicating.
#pragma once

#include <cstdint>

namespace was {

/// SplitMix64's finaliser: a bijective 64-bit mix with full avalanche.
constexpr uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// What a stream is used for; keeps training draws, DOM draws and data
/// shuffles apart even when they share a seed.
enum class StreamDomain : uint64_t {
  kTrainingDraw = 1,
  kDomDraw = 2,
  kShuffle = 3,
  kSynthetic = 4,
  kTestAugment = 5,
  kAugment = 6,        ///< training-batch augmentation (data::Augmentation)
  kValidation = 7,     ///< which training samples are held out for validation
  kStochasticDom = 8,  ///< the paper's DOM: a fresh draw per test batch (repeat, layer, batch)
  kPaperEval = 9,      ///< the paper's evaluation: shuffled test batches, dropout masks
};

/// A SplitMix64 sequence whose start is a hash of its key.
class CounterStream {
 public:
  CounterStream(uint64_t seed, StreamDomain domain, uint64_t layer, uint64_t step)
      : state_(mix64(mix64(mix64(seed ^ (static_cast<uint64_t>(domain) << 56)) ^ layer) ^ step)) {}

  uint64_t next_u64() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  /// Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform on [a, b] (b reached only as a limit; a == b gives a).
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  /// Uniform integer in [lo, hi], both inclusive.
  int64_t integer(int64_t lo, int64_t hi) {
    const auto span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(next_u64() % span);
  }

 private:
  uint64_t state_;
};

}  // namespace was
