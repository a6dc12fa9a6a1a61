// The DOM chosen for an objective (WAS-SPEC §1, §5: SW "determined by the
// specific objective"): candidate DOM draws scored on the run's validation
// split only (the test split is never read), the Pareto front of top-1
// against MACs, and the best stored as named DOM profiles in the checkpoint,
// each with its own BatchNorm statistics.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/data/test_augment.h"
#include "was/io/checkpoint.h"

namespace was {

/// What to optimise.
struct DomObjective {
  enum class Kind { kMacs, kAccuracy, kRobust } kind = Kind::kMacs;
  data::TestAugmentation augmentation;  ///< kRobust: scored under this test-time augmentation
  std::string text;                     ///< as parsed

  /// "macs", "accuracy" or "robust:AUG"; throws was::Error naming the choices.
  static DomObjective parse(const std::string& text);
  /// The default profile name: "macs", "accuracy" or "robust".
  std::string default_name() const;
};

struct DomSearchSpec {
  std::string objective = "macs";
  std::vector<std::string> policies;  ///< inference policies tried beside the training one
  int64_t candidates = 16;            ///< DOM seeds per policy
  int64_t keep = 1;                   ///< profiles stored
  int64_t bn_batches = -1;            ///< per candidate (-1: the run's)
  int64_t batch_size = 256;
  double max_drop = 1.0;  ///< macs: the largest validation top-1 drop from AOM, in points
  double max_macs = 0.0;  ///< accuracy: the MAC budget per image, in millions (0: none)
  std::string name;       ///< profile name ("" : the objective's); -2, -3 ... for keep > 1

  /// Throws was::Error for out-of-range values (NaN included).
  void validate() const;
};

struct DomCandidate {
  Mode mode;
  double val_top1 = 0.0;  ///< clean, or under the objective's augmentation
  int64_t macs = 0;
  double sparsity = 0.0;
  bool pareto = false, chosen = false;
};

struct DomSearchResult {
  DomObjective objective;
  int64_t validation_images = 0;
  double aom_val_top1 = 0.0;  ///< clean
  int64_t aom_macs = 0;
  std::vector<DomCandidate> candidates;       ///< in the order scored: seeds of the training policy, then of each other
  std::vector<size_t> chosen;                 ///< indices into candidates, best first (empty: none meets the limit)
  std::vector<DomProfile> profiles;           ///< the profiles the choice makes, as stored
  std::vector<std::string> batchnorm_before;  ///< the checkpoint's BatchNorm keys before the candidates' were added
};

/// Scores every candidate of `spec` on the validation split of the finished
/// WAS run in `checkpoint` and makes the choice; changes nothing on disk.
/// `on_scored(i, n)` after each candidate. Throws was::Error for an
/// unfinished run, one without WAS or without a validation split.
DomSearchResult search_dom(Checkpoint& checkpoint, const DomSearchSpec& spec, const std::string& data_dir,
                           torch::Device device, const std::function<void(size_t, size_t)>& on_scored = {});

/// Stores the chosen profiles in the checkpoint file (replacing profiles of
/// the same names, keeping the others and the optimiser state; BatchNorm
/// statistics of candidates not kept are dropped). Throws was::Error,
/// writing nothing, if no candidate met the limit.
void store_dom_profiles(Checkpoint& checkpoint, const DomSearchSpec& spec, const DomSearchResult& result);

}  // namespace was
