// What `was eval` and `was experiment` measure on a stored run: top-1, MACs
// and sparsity of AOM and DOM, DOM profiles over several seeds, a DOM
// ensemble, the stochastic DOM, the released code's evaluation, and top-1
// drops under test-time augmentations.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/core/speed_cache.h"
#include "was/data/test_augment.h"
#include "was/io/checkpoint.h"

namespace was {

struct EvalSpec {
  std::string mode = "both";                          ///< aom, dom or both
  std::vector<int64_t> dom_seeds;                     ///< empty: the run's stored seed; several: a DOM profile
  std::vector<std::string> dom_profiles;              ///< named profiles stored by `was dom-search` (replace dom_seeds)
  int64_t ensemble = 0;                               ///< > 0: a DOM ensemble of the draws dom_seeds[0], +1, ..., +n-1
  std::vector<data::TestAugmentation> augmentations;  ///< robustness sweep, on AOM and the first DOM seed
  uint64_t augment_seed = 0;                          ///< seeds the test-time augmentation draws
  int64_t batch_size = 256;
  int64_t bn_batches = 50;     ///< to estimate BN statistics of a DOM seed that has none
  int64_t test_subset = 0;     ///< first N test images (0: all)
  int64_t stochastic_dom = 0;  ///< > 0: the paper's DOM, a fresh draw per test batch, this many passes
  /// Also evaluate every mode as the released code does (BatchNorm in training
  /// mode on shuffled batches of 128); always on for a --protocol paper run.
  bool paper_eval = false;

  /// Throws was::Error for out-of-range values.
  void validate() const;
  nlohmann::json to_json() const;
  static EvalSpec from_json(const nlohmann::json& j);  ///< throws was::Error naming an unknown key
};

/// How fast an evaluation runs, not what it measures (not part of the spec):
/// the memory format, "nchw", "channels-last" or "auto" (the faster of the
/// two, timed on the evaluation's batch here and remembered in `cache`).
struct EvalSpeed {
  std::string layout = "auto";
  const SpeedCache* cache = nullptr;                   ///< null: measure, remember nothing
  std::function<void(const std::string&)> on_message;  ///< the choice and warnings; null: silent
};

/// The memory format `speed` asks for, measured on `network` (a forward of
/// `batch` random images in AOM and eval mode; its weights, BatchNorm
/// statistics and torch's generator are left as they were) when "auto".
SpeedChoice choose_evaluation_layout(Network& network, int64_t batch, torch::Device device, const EvalSpeed& speed);

/// "AOM", "DOM:SEED" or "DOM:SEED/POLICY", as the tables name a mode.
std::string mode_label(const Mode& mode);

/// Evaluates one checkpoint; `label` names it in the output. The result:
/// {run, checkpoint, model, policy, dataset, test_images, spec,
///  modes: [{mode, key, top1, top1_training_bn, loss, macs, flops, aom_macs,
///           sparsity_transformed, sparsity_conv, batchnorm,
///           robustness: [{augmentation, kind, strength, top1, drop_relative, drop_absolute}]}],
///  dom_profile?: {seeds, top1_mean, top1_std, top1_min, top1_max, macs_mean, sparsity_mean},
///  ensemble?: {seeds, top1, loss, macs, macs_vs_aom},
///  stochastic_dom?: {running: {top1[], mean, sd, min, max}, paper: {...}},
///  selection?: the run's epoch selections (was/record/selection.h)}
/// A mode row has top1_paper when the released code's evaluation is asked for.
/// The result also names the layout it ran in (speed_settings).
nlohmann::json evaluate_run(Checkpoint& checkpoint, const EvalSpec& spec, const std::string& data_dir,
                            torch::Device device, const std::string& label, const EvalSpeed& speed = {});

}  // namespace was
