// Making sure a mode of a checkpoint has its own BatchNorm statistics.
#pragma once

#include <string>

#include "was/io/checkpoint.h"

namespace was::cli {

/// If `mode` has no BatchNorm statistics stored, estimates them from
/// `bn_batches` training batches of the checkpoint's dataset (read from
/// `data_dir`, "" for the default). Returns "per-mode", "per-mode (estimated
/// now)" or "training" (no BatchNorm layers, or bn_batches == 0).
std::string ensure_mode_batchnorm(Checkpoint& checkpoint, const Mode& mode, const std::string& data_dir,
                                  int64_t bn_batches, int64_t batch_size, torch::Device device);

}  // namespace was::cli
