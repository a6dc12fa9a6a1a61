// Which epoch a run's figure comes from: the final one, the best on the test
// set (how the paper's code selects, labelled so), or the best on the
// validation split (an honest selection).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace was {

struct EpochRecord;  // was/record/run_record.h

/// The curves a history may hold, as `test_top1_CURVE` / `val_top1_CURVE`:
/// aom, dom (fixed DOM seed), sdom (stochastic DOM) with running statistics,
/// and the same with suffix `_paper` (BatchNorm in training mode, as the
/// released code evaluates), and aom_bn / dom_bn (BatchNorm re-estimated per
/// mode at each curve epoch, TrainOptions::mode_bn_curves).
const std::vector<std::string>& evaluation_curves();

struct EpochSelection {
  double final_top1 = 0;
  int64_t final_epoch = 0;
  double best_test_top1 = 0;  ///< selected on the test set (the paper's acc_best)
  int64_t best_test_epoch = 0;
  std::optional<double> val_selected_top1;  ///< test top-1 at the epoch of the best validation top-1
  std::optional<int64_t> val_selected_epoch;
  std::optional<double> best_val_top1;
  nlohmann::json to_json() const;
  static EpochSelection from_json(const nlohmann::json& j);
};

/// The three selections of `curve` over the epochs of `history` that
/// evaluated it (first epoch wins ties); nullopt if no epoch did.
std::optional<EpochSelection> select_epochs(const std::vector<EpochRecord>& history, const std::string& curve);

/// {curve: selection} for every curve of evaluation_curves() in `history`.
std::map<std::string, EpochSelection> select_all_epochs(const std::vector<EpochRecord>& history);

/// {curve: selection} as results.json stores it.
nlohmann::json selections_json(const std::map<std::string, EpochSelection>& selections);

}  // namespace was
