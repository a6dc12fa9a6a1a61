// Making sure a mode of a checkpoint has its own BatchNorm statistics.
#pragma once

#include <string>

#include "was/data/dataset.h"
#include "was/io/checkpoint.h"

namespace was::cli {

/// If `mode` has no BatchNorm statistics stored, estimates them from
/// `bn_batches` batches of `train` (the run's training images), as training
/// does (was::reestimate_batchnorm_after_training). Returns
/// "per-mode", "per-mode (estimated now)" or "training" (no BatchNorm layers,
/// or bn_batches == 0).
std::string ensure_mode_batchnorm(Checkpoint& checkpoint, const Mode& mode, const data::Dataset& train,
                                  int64_t bn_batches, torch::Device device);

/// The same, reading the training images of the checkpoint's dataset from
/// `data_dir` ("" for the default) only when they are needed.
std::string ensure_mode_batchnorm(Checkpoint& checkpoint, const Mode& mode, const std::string& data_dir,
                                  int64_t bn_batches, torch::Device device);

/// The training images `state` was trained on: its dataset read from
/// `data_dir`, cut to the run's training subset.
data::Dataset training_images_of(const RunState& state, const std::string& data_dir);

}  // namespace was::cli
