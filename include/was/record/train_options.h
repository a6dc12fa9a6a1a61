// A run's training settings: what `was train` flags and an experiment
// file's "train" object set, stored in every checkpoint (the run record's
// first part), with the protocols that fix some of them and the choice of
// training data they make.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "was/data/dataset.h"

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

  /// Throws was::Error naming the first out-of-range setting (by its key,
  /// with the command-line flag in the hint): the one check every caller
  /// (the trainer, `was train`, experiment files) makes.
  void validate() const;

  nlohmann::json to_json() const;
  /// Reads the options stored in a checkpoint or an experiment file's
  /// "train" object; a value of the wrong type throws was::Error naming it.
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

}  // namespace was
