// Top-1 evaluation of a network in one mode.
#pragma once

#include <functional>
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
