// The training loop: SGD on shadow weights, per-epoch metrics, atomic
// checkpoints, exact resume, and per-mode BatchNorm re-estimation at the end.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "was/data/dataset.h"
#include "was/data/loader.h"
#include "was/distributed/gradient_reducer.h"
#include "was/io/checkpoint.h"
#include "was/network.h"
#include "was/record/run_record.h"
#include "was/record/train_options.h"

namespace was {

/// Re-estimates the BatchNorm statistics of `mode` as the end of training
/// does (and as `was eval` and `was check` redo it): from the first
/// `bn_batches` batches of 256 images of `train`, in an order fixed by
/// `run_seed`, drawn with `augmentation` (the run's training augmentation:
/// the layers after each BatchNorm were trained on the statistics of
/// augmented images). Returns the number of batches used (0: nothing to do).
int64_t reestimate_batchnorm_after_training(Network& network, const Mode& mode, const data::Dataset& train,
                                            const data::Normalization& normalization, uint64_t run_seed,
                                            int64_t bn_batches, torch::Device device = torch::kCPU,
                                            const data::Augmentation& augmentation = {});

/// The augmentation a stored run re-estimates BatchNorm statistics with: its
/// training augmentation for runs that record `bn_augmented` in their results
/// (or have none yet), none for finished runs written before it was recorded.
data::Augmentation batchnorm_augmentation_of(const RunRecord& state);

/// What each epoch reports (one JSON line).
using EpochCallback = std::function<void(const EpochRecord&)>;

/// Where training stands after a batch: for a progress display.
struct BatchProgress {
  int64_t epoch = 0, epochs = 0;   ///< 1-based
  int64_t batch = 0, batches = 0;  ///< 1-based, per epoch
  double loss = 0.0, top1 = 0.0;   ///< running means over the epoch so far
  double images_per_s = 0.0;
};
using BatchCallback = std::function<void(const BatchProgress&)>;

class Trainer {
 public:
  /// `state` says where to start (a fresh RunRecord, or a checkpoint's).
  Trainer(Network& network, const data::Split& split, TrainOptions options, RunRecord state,
          torch::Device device = torch::kCPU);

  /// Data-parallel training: this process is one rank of `group` (not owned).
  /// Every rank draws the same shadow weights (the streams depend on the step
  /// only), trains on its share of each global batch, and all-reduces the
  /// gradients; BatchNorm statistics are per rank in training and averaged at
  /// every epoch end, so every rank evaluates identically. Rank 0 alone writes.
  /// Gradients travel in buckets of `bucket_bytes` that start while backward
  /// runs (0: one bucket after backward).
  /// The memory format and precision of the training forward (before run();
  /// stored with the run's options).
  void set_speed(bool channels_last, bool bf16);
  void set_process_group(distributed::ProcessGroup* group, int64_t bucket_bytes = distributed::kDefaultBucketBytes);

  /// Continues from a checkpoint: its optimiser state replaces the fresh one.
  void restore_optimizer(Checkpoint& checkpoint) { checkpoint.restore_optimizer(*optimizer_); }

  /// Trains up to options.epochs, then re-estimates BatchNorm per mode and
  /// evaluates AOM and DOM; returns the final state (also in last.pt).
  RunRecord run(const EpochCallback& on_epoch = {});
  /// Called after every batch while options.progress is set (the lead rank only).
  void set_batch_callback(BatchCallback on_batch) { on_batch_ = std::move(on_batch); }

  /// Re-estimates the BN statistics of AOM and of DOM(dom_seed) and evaluates
  /// both modes with and without them; fills state.results.
  void finish();

  torch::optim::SGD& optimizer() { return *optimizer_; }
  const RunRecord& state() const { return state_; }

 private:
  BatchCallback on_batch_;
  double learning_rate_at(int64_t step) const;
  /// The checkpoint, then the files write_run_files derives from it.
  void save();
  /// One optimiser step on `batch` with options_.draws shadow-weight draws;
  /// returns the loss and the logits the step's statistics are counted on.
  std::pair<double, torch::Tensor> train_step(const data::Batch& batch, double share);
  /// The training forward with the speed options (layout, autocast) applied.
  torch::Tensor training_forward(const torch::Tensor& images);
  /// This rank's rows of a global batch, and their share of it.
  std::pair<data::Batch, double> local_share(const data::Batch& global) const;
  /// Around the step's last backward: gradients all-reduced as they come.
  void begin_gradient_reduction();
  void finish_gradient_reduction();
  void average_batchnorm_statistics();
  bool writes() const;
  bool paper_protocol() const { return options_.protocol == "paper"; }
  /// The per-epoch evaluations of the paper's protocol, added to `metrics`.
  /// What BatchNorm statistics are re-estimated with: the training augmentation.
  data::Augmentation batchnorm_augmentation() const;
  void evaluate_with_mode_batchnorm(EpochRecord& metrics, const data::Dataset& test_images);
  void evaluate_as_paper(EpochRecord& metrics, int64_t epoch);

  Network& network_;
  const data::Split& split_;
  TrainOptions options_;
  RunRecord state_;
  torch::Device device_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  distributed::ProcessGroup* group_ = nullptr;
  std::unique_ptr<distributed::GradientReducer> reducer_;
  double allreduce_seconds_ = 0.0;  ///< in the current epoch: waiting for gradient all-reduces after backward
};

/// metrics.jsonl (one line per epoch of `record`'s history) and, once it is
/// finished, results.json, written atomically into `dir`. They are views of
/// the checkpoint, rewritten after each save and on resume, so a kill
/// between the checkpoint and them loses nothing.
void write_run_files(const std::string& dir, const RunRecord& record);

}  // namespace was
