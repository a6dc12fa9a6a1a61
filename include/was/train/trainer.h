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

namespace was {

struct TrainOptions {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 0.01;  ///< the paper's SGD settings (WAS-SPEC §7)
  double momentum = 0.9;
  double weight_decay = 0.0;
  bool cosine = false;           ///< cosine decay of lr to 0 over all steps
  int64_t bn_batches = 50;       ///< batches per mode for BN re-estimation; 0 keeps training statistics
  int64_t checkpoint_every = 0;  ///< also checkpoint every N steps (0: at epoch ends only)
  int64_t eval_every = 1;        ///< evaluate on the test set every N epochs (0: only at the end)
  int64_t max_steps = 0;         ///< stop after this many steps in total (0: no limit); for tests
  int64_t train_subset = 0;      ///< the data: first N training images (0: all); applied by the caller
  int64_t test_subset = 0;       ///< the data: first N test images (0: all); applied by the caller
  double val_fraction = 0.0;     ///< the data: this fraction of the training images held out (select_training_data)
  uint64_t val_seed = 0;         ///< which images are held out
  /// Shadow-weight draws per step (WAS-SPEC §4 keys draw k of step s by
  /// (s, k); draw 0 is the ordinary one, so draws = 1 is the ordinary step).
  int64_t draws = 1;
  /// How K draws make one update: "mean" back-propagates the mean of the K
  /// losses; "min" only the draw with the lowest loss (scored without
  /// gradients, BatchNorm running statistics untouched by the scoring).
  std::string combine = "mean";
  /// Random crop (4-pixel zero padding) and horizontal flip of training
  /// batches (data::Augmentation::standard()); unset: the data set's default
  /// (data::augments_by_default). The Trainer stores the resolved choice.
  std::optional<bool> augment;
  /// Speed options (PERFORMANCE.md): NHWC activations, so that oneDNN runs
  /// its channels-last kernels; bfloat16 autocast of the forward pass.
  bool channels_last = false;
  bool bf16 = false;
  /// "paper": the authors' released training and evaluation (apply_protocol);
  /// "": the project's. Under "paper" every epoch evaluates AOM, the fixed DOM
  /// and a stochastic DOM on the test (and validation) images twice: with
  /// running statistics and with BatchNorm in training mode, as the code does.
  std::string protocol;
  /// Passes of the stochastic DOM (a fresh draw per test batch) in the final
  /// evaluation, with both normalisations (0: none).
  int64_t stochastic_dom = 0;
  /// Per-epoch test curves on the first N test images only (0: all); the
  /// final evaluation always uses every test image. A cost knob for long
  /// studies: the curves, and the epochs selected on them, then carry the
  /// sampling error of N images.
  int64_t curve_test_images = 0;
  /// The project's protocol: at every eval_every epoch, also the curves with
  /// BatchNorm re-estimated per mode as the final evaluation does (bn_batches
  /// batches), on the validation and test images: `*_top1_aom_bn`,
  /// `*_top1_dom_bn`. The training statistics are restored afterwards, so
  /// the weights and the training curves do not change. Without it, the
  /// curves use the statistics gathered while training on shadow weights,
  /// which misjudge AOM; with it, an epoch can be selected on the figure
  /// the final evaluation reports.
  bool mode_bn_curves = false;
  bool progress = true;  ///< report every batch to the Trainer's batch callback
  std::string out_dir;   ///< last.pt, metrics.jsonl, results.json go here ("" writes nothing)

  nlohmann::json to_json() const;
  /// Reads the options stored in a checkpoint.
  static TrainOptions from_json(const nlohmann::json& j);
};

/// The protocols apply_protocol knows.
const std::vector<std::string>& protocol_names();

/// Sets what `options.protocol` fixes. "paper": SGD 0.01 / 0.9, no weight
/// decay, constant learning rate, batch 128, no augmentation, one draw per
/// step; evaluation every epoch unless `given` holds "eval_every" (a cost
/// knob); 500 epochs and 5 stochastic-DOM passes unless
/// `given` holds "epochs" / "stochastic_dom". `given` names the options the
/// user set (TrainOptions::to_json keys); one set to a value the protocol
/// contradicts throws was::Error naming it, as does an unknown protocol.
void apply_protocol(TrainOptions& options, const std::vector<std::string>& given);

/// The input normalisation a protocol fixes ("paper": mean 0.5, std 0.5 per
/// channel, the released code's Normalize); nullopt: the data set's.
std::optional<data::Normalization> protocol_normalization(const std::string& protocol, int64_t channels);

/// Applies a run's choice of training data to a freshly loaded split: the
/// first train_subset images, then val_fraction of them held out into
/// `split.validation` (data::hold_out with val_seed). The test split is never
/// involved. Throws was::Error for out-of-range values.
void select_training_data(data::Split& split, const TrainOptions& options);

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
data::Augmentation batchnorm_augmentation_of(const RunState& state);

/// What each epoch reports (one JSON line).
using EpochCallback = std::function<void(const nlohmann::json&)>;

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
  /// `state` says where to start (a fresh RunState, or a checkpoint's).
  Trainer(Network& network, const data::Split& split, TrainOptions options, RunState state,
          torch::Device device = torch::kCPU);

  /// Data-parallel training: this process is one rank of `group` (not owned).
  /// Every rank draws the same shadow weights (the streams depend on the step
  /// only), trains on its share of each global batch, and all-reduces the
  /// gradients; BatchNorm statistics are per rank in training and averaged at
  /// every epoch end, so every rank evaluates identically. Rank 0 alone writes.
  /// Gradients travel in buckets of `bucket_bytes` that start while backward
  /// runs (0: one bucket after backward).
  void set_process_group(distributed::ProcessGroup* group, int64_t bucket_bytes = distributed::kDefaultBucketBytes);

  /// Continues from a checkpoint: its optimiser state replaces the fresh one.
  void restore_optimizer(Checkpoint& checkpoint) { checkpoint.restore_optimizer(*optimizer_); }

  /// Trains up to options.epochs, then re-estimates BatchNorm per mode and
  /// evaluates AOM and DOM; returns the final state (also in last.pt).
  RunState run(const EpochCallback& on_epoch = {});
  /// Called after every batch while options.progress is set (the lead rank only).
  void set_batch_callback(BatchCallback on_batch) { on_batch_ = std::move(on_batch); }

  /// Re-estimates the BN statistics of AOM and of DOM(dom_seed) and evaluates
  /// both modes with and without them; fills state.results.
  void finish();

  torch::optim::SGD& optimizer() { return *optimizer_; }
  const RunState& state() const { return state_; }

 private:
  BatchCallback on_batch_;
  double learning_rate_at(int64_t step) const;
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
  void evaluate_with_mode_batchnorm(nlohmann::json& metrics, const data::Dataset& test_images);
  void evaluate_as_paper(nlohmann::json& metrics, int64_t epoch);

  Network& network_;
  const data::Split& split_;
  TrainOptions options_;
  RunState state_;
  torch::Device device_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  distributed::ProcessGroup* group_ = nullptr;
  std::unique_ptr<distributed::GradientReducer> reducer_;
  double allreduce_seconds_ = 0.0;  ///< in the current epoch: waiting for gradient all-reduces after backward
};

}  // namespace was
