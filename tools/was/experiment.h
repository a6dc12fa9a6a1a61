// `was experiment CONFIG`: a grid of runs (models x policies x datasets x
// seeds) described in a JSON file, one run directory per cell, resumable.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "evaluation.h"
#include "was/train/trainer.h"

namespace was::cli {

struct PolicyEntry {
  std::string label;   ///< names the cell: "baseline", "C", "crop0.4-0.6"
  std::string policy;  ///< as --was takes it
  std::vector<uint64_t> seeds;  ///< this policy's seeds ("seeds" in its entry); empty: the grid's
};

/// A parsed, validated experiment file with its budget applied.
struct Experiment {
  std::string name, description, budget;
  std::vector<std::string> models, datasets;
  std::vector<PolicyEntry> policies;
  std::vector<uint64_t> seeds;
  std::map<std::string, std::string> data_dirs;  ///< per dataset ("" : its standard place)
  nlohmann::json train = nlohmann::json::object();  ///< the training settings, as TrainOptions::to_json writes them
  int64_t dom_seed = 0;
  std::string granularity;
  EvalSpec eval;
  std::vector<std::string> robustness_models;  ///< models that get the robustness sweep (empty: all)
  std::vector<uint64_t> robustness_seeds;      ///< seeds that get it (empty: all)

  /// Reads `path`; `budget` is "" (the full protocol), a name from the file's
  /// "budgets", or a factor in (0, 1] that scales the epochs. Throws
  /// was::Error for an unknown key, model, dataset or policy, or an empty grid.
  static Experiment load(const std::string& path, const std::string& budget);
  /// The training options of every cell, with its protocol applied.
  TrainOptions train_options() const;
  /// The keys "train" sets (after the budget), which a protocol must not contradict.
  std::vector<std::string> given_train_keys() const;
  nlohmann::json to_json() const;
};

/// One cell of the grid, in the order it runs: seeds outermost, so a grid cut
/// short still has every model and policy for its first seeds. A policy with
/// seeds of its own (a headline comparison with more seeds) joins each of them.
struct Cell {
  std::string dataset, model;
  PolicyEntry policy;
  uint64_t seed = 0;
  std::string name() const;  ///< "cifar10-vgg16-C-s0", its directory under cells/
};
std::vector<Cell> cells_of(const Experiment& experiment);

void add_experiment_command(CLI::App& app);

}  // namespace was::cli
