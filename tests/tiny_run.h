// One epoch of small_cnn on the synthetic data set, trained and stored by the
// library as `was train` would: the run the run-layer tests start from.
#pragma once

#include <string>

#include "was/data/datasets.h"
#include "was/network.h"
#include "was/train/trainer.h"

namespace was::testing {

struct TinyRun {
  std::string policy = "CT";
  uint64_t seed = 3;
  int64_t bn_batches = 2;
  double val_fraction = 0.0;  ///< > 0: a validation split held out, as --val-fraction
};

/// Trains `run` into `dir` (last.pt, metrics.jsonl, results.json).
inline void train_tiny_run(const std::string& dir, const TinyRun& run = {}) {
  auto split = was::data::load_dataset("synthetic", "", was::data::DatasetOptions{});
  was::TrainOptions options;
  options.epochs = 1;
  options.batch_size = 64;
  options.bn_batches = run.bn_batches;
  options.eval_every = 0;
  options.val_fraction = run.val_fraction;
  options.progress = false;
  options.out_dir = dir;
  was::select_training_data(split, options);
  was::RunRecord state;
  state.model = {"small_cnn", split.train.num_classes, split.train.channels(), split.train.height()};
  state.policy = run.policy;
  state.seed = run.seed;
  state.dataset = "synthetic";
  state.normalization = split.normalization;
  torch::manual_seed(state.seed);
  was::Network net(state.model, was::Policy::parse(state.policy), state.seed);
  was::Trainer(net, split, options, state).run();
}

}  // namespace was::testing
