// What a stored run needs to be evaluated again: its checkpoint, the data it
// was trained on, and per-mode BatchNorm statistics estimated as training
// would have.
#pragma once

#include <torch/torch.h>

#include <string>

#include "was/data/dataset.h"
#include "was/data/datasets.h"
#include "was/io/checkpoint.h"

namespace was {

/// Accepts a checkpoint file or a run directory holding last.pt.
std::string resolve_checkpoint(const std::string& path);

/// The data options a stored run was trained with: its image size for an
/// image folder, coarse labels for a 20-class CIFAR-100 run.
data::DatasetOptions dataset_options_of(const RunRecord& state);

/// The training images `state` was trained on: its dataset read from
/// `data_dir` ("" for the default), cut to the run's training subset and
/// without its validation hold-out.
data::Dataset training_images_of(const RunRecord& state, const std::string& data_dir);

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

}  // namespace was
