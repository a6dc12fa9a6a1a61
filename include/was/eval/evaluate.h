// Top-1 evaluation of a network in one mode.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "was/data/loader.h"
#include "was/network.h"

namespace was {

struct EvalResult {
  int64_t correct = 0;
  int64_t total = 0;
  double loss = 0.0;  ///< mean cross-entropy
  double top1() const { return total ? 100.0 * double(correct) / double(total) : 0.0; }
};

/// Evaluates `network` in `mode` over every batch of epoch 0 of `loader`
/// (use an unshuffled loader). `use_mode_batchnorm` false keeps the
/// training-time BatchNorm statistics (to measure what re-estimation buys).
EvalResult evaluate(Network& network, const data::BatchLoader& loader, const Mode& mode,
                    bool use_mode_batchnorm = true);

/// How an evaluation normalises. kRunning: BatchNorm's running statistics
/// (the mode's re-estimated ones where stored and asked for, else training's),
/// dropout off: the project's evaluation. kBatch: BatchNorm and dropout in
/// training mode, each batch normalised with its own statistics, as the
/// authors' released code evaluates (it never calls eval()); the running
/// statistics and torch's generator are left as they were.
enum class Normalisation { kRunning, kBatch };

/// The weights a forward uses, per test batch: a fixed mode, or a fresh draw
/// of the training policy for every batch (the paper's stochastic DOM; draw
/// `b` of pass `draw_seed` is the stream (draw_seed, kStochasticDom, layer, b)).
struct EvalWeights {
  Mode mode;
  bool fresh_draws = false;
  uint64_t draw_seed = 0;
  static EvalWeights of(const Mode& mode) { return {mode, false, 0}; }
  static EvalWeights stochastic(uint64_t draw_seed) { return {Mode::stochastic_dom(), true, draw_seed}; }
};

/// Evaluates over every batch of `epoch` of `loader` (its order: shuffled
/// loaders give the released code's shuffled test batches). With kBatch the
/// dropout masks come from a generator seeded by (seed, epoch).
EvalResult evaluate(Network& network, const data::BatchLoader& loader, const EvalWeights& weights,
                    Normalisation normalisation, bool use_mode_batchnorm = true, int64_t epoch = 0, uint64_t seed = 0);

/// The stochastic DOM over `repeats` passes (pass r draws with seed r): each
/// pass's top-1, and their mean, sample standard deviation, min and max.
struct RepeatedResult {
  std::vector<double> top1;
  double mean = 0, sd = 0, min = 0, max = 0;
  nlohmann::json to_json() const;
  static RepeatedResult from_json(const nlohmann::json& j);
};
RepeatedResult evaluate_stochastic_dom(Network& network, const data::BatchLoader& loader, int64_t repeats,
                                       Normalisation normalisation, uint64_t seed = 0);

/// An ensemble of modes (typically n DOM draws): the prediction is the argmax
/// of the softmax averaged over `modes`, each with its own BatchNorm
/// statistics; `loss` is the cross-entropy of that average. Its cost is the
/// sum of the members' MACs. One mode gives exactly evaluate()'s top-1.
EvalResult evaluate_ensemble(Network& network, const data::BatchLoader& loader, const std::vector<Mode>& modes);

/// Top-1 drop under a test-time augmentation (WAS-SPEC §6):
/// relative = 100 (clean - augmented) / clean, in %, and absolute = clean -
/// augmented, in points. A clean top-1 of 0 gives a relative drop of 0.
struct DropRate {
  double relative = 0.0;
  double absolute = 0.0;
};
DropRate drop_rate(double clean_top1, double augmented_top1);

}  // namespace was
