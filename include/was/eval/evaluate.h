// Top-1 evaluation of a network in one mode.
#pragma once

#include <functional>

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

}  // namespace was
