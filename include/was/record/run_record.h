// The run record: everything about a run that is not a tensor, typed. The
// trainer fills it, every checkpoint stores it (its JSON mapping is the
// checkpoint's metadata, so files written before it existed still load),
// and `was eval`, `was check`, `was dom-search`, `was info` and the reports
// read it back. Its parts: the model and data choice, the training settings
// (TrainOptions), where training stands, one EpochRecord per epoch, the final
// per-mode results and the DOM profiles `was dom-search` stored.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "was/data/dataset.h"
#include "was/eval/evaluate.h"
#include "was/models/classifier.h"
#include "was/record/selection.h"
#include "was/record/train_options.h"
#include "was/shadow.h"

namespace was {

/// One epoch: a line of metrics.jsonl.
struct EpochRecord {
  int64_t epoch = 0;  ///< 1-based
  int64_t step = 0;   ///< training forward passes done by its end
  double lr = 0, train_loss = 0, train_top1 = 0, images_per_s = 0, seconds = 0;
  std::optional<int64_t> world_size;        ///< data-parallel runs only
  std::optional<double> allreduce_seconds;  ///< this rank's wait for gradient all-reduces after backward
  /// The evaluations of this epoch by name: `test_top1_CURVE`,
  /// `val_top1_CURVE` for the curves of evaluation_curves(), `test_loss_aom`.
  std::map<std::string, double> evaluations;

  std::optional<double> evaluation(const std::string& name) const;
  nlohmann::json to_json() const;
  static EpochRecord from_json(const nlohmann::json& j);
};

/// The final evaluation of one mode on every test image.
struct ModeResult {
  double top1 = 0, loss = 0;
  double top1_training_bn = 0;     ///< with the statistics gathered while training on shadow weights
  std::string batchnorm;           ///< "re-estimated" (per mode, the figure above) or "training"
  std::optional<double> val_top1;  ///< on the validation split, when the run holds one out
  int64_t macs = 0;
  double sparsity_transformed = 0, sparsity_conv = 0;
  nlohmann::json to_json() const;
  static ModeResult from_json(const nlohmann::json& j);
};

/// The paper's stochastic DOM (a fresh draw per test batch), over several
/// passes, with running statistics and with BatchNorm in training mode.
struct StochasticDomResult {
  RepeatedResult running, paper;
};

/// What the end of training measured (results.json).
struct RunResults {
  std::optional<ModeResult> aom, dom;  ///< dom: DOM(dom_seed), for WAS runs
  std::optional<StochasticDomResult> stochastic_dom;
  std::map<std::string, EpochSelection> selection;  ///< by curve (select_all_epochs)
  std::string protocol;                             ///< "" for the project's
  int64_t dom_seed = 0;
  int64_t bn_batches = 0;  ///< batches per mode the statistics were re-estimated from (0: training's kept)
  /// Whether re-estimation drew the training augmentation; unset in runs
  /// finished before it was recorded (they re-estimated on plain images).
  std::optional<bool> bn_augmented;
  int64_t val_images = 0;

  bool empty() const { return !aom.has_value(); }
  /// The figures of the mode named "aom" or "dom"; nullptr if absent.
  const ModeResult* mode(const std::string& name) const;
  nlohmann::json to_json() const;
  static RunResults from_json(const nlohmann::json& j);
};

/// A named DOM chosen by `was dom-search`.
struct DomProfile {
  std::string name;
  std::string mode;       ///< a Mode key (Mode::parse)
  std::string objective;  ///< "macs" or "accuracy"
  double val_top1 = 0, aom_val_top1 = 0;
  int64_t macs = 0, aom_macs = 0;
  double sparsity_transformed = 0;
  nlohmann::json to_json() const;
  static DomProfile from_json(const nlohmann::json& j);
};

struct RunRecord {
  models::ModelConfig model;
  std::string policy = "none";
  uint64_t seed = 0;
  int64_t dom_seed = 0;
  std::string dataset;
  std::vector<std::string> class_names;  ///< empty when the dataset has none
  data::Normalization normalization;
  TrainOptions options;
  int64_t epoch = 0;  ///< epochs fully done
  int64_t batch = 0;  ///< batches done within `epoch` (mid-epoch checkpoints)
  int64_t step = 0;   ///< training forward passes done (the draw counter)
  bool finished = false;
  std::vector<EpochRecord> history;  ///< one per epoch done
  RunResults results;                ///< the final evaluation (empty until finished)
  std::vector<DomProfile> dom_profiles;

  /// Throws was::Error naming the first field that contradicts another or
  /// is out of range (the settings by TrainOptions::validate; the policy
  /// must parse; counters non-negative; the history one record per epoch
  /// done, in order; profile names unique, their modes parseable).
  void validate() const;
  /// The mode of the stored DOM profile `name`; throws was::Error listing the
  /// stored names when there is none by that name.
  Mode profile_mode(const std::string& name) const;

  /// The checkpoint's metadata (the checkpoint adds its format version).
  nlohmann::json to_json() const;
  /// Throws was::Error naming the missing or mistyped field.
  static RunRecord from_json(const nlohmann::json& j);
};

/// The history as JSON lines' objects (metrics.jsonl, reports).
nlohmann::json history_json(const std::vector<EpochRecord>& history);

}  // namespace was
