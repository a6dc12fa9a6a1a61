// An experiment grid (models x policies x datasets x seeds) described in a
// JSON file, one run directory per cell, resumable; several processes may
// share one grid, each taking the cells no other holds.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/run/evaluation.h"
#include "was/train/trainer.h"

namespace was {

struct PolicyEntry {
  std::string label;            ///< names the cell: "baseline", "C", "crop0.4-0.6"
  std::string policy;           ///< as --was takes it
  std::vector<uint64_t> seeds;  ///< this policy's seeds ("seeds" in its entry); empty: the grid's
};

/// A parsed, validated experiment file with its budget applied.
struct Experiment {
  std::string name, description, budget;
  std::vector<std::string> models, datasets;
  std::vector<PolicyEntry> policies;
  std::vector<uint64_t> seeds;
  std::map<std::string, std::string> data_dirs;     ///< per dataset ("" : its standard place)
  nlohmann::json train = nlohmann::json::object();  ///< the training settings, as TrainOptions::to_json writes them
  int64_t dom_seed = 0;
  std::string granularity;
  EvalSpec eval;
  std::vector<std::string> robustness_models;  ///< models that get the robustness sweep (empty: all)
  std::vector<uint64_t> robustness_seeds;      ///< seeds that get it (empty: all)

  /// Sets where `dataset` is read from; throws was::Error if the grid does not use it.
  void set_data_dir(const std::string& dataset, const std::string& path);
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
/// The cells whose names match one of `patterns` ('*' any run of characters,
/// '?' one), in grid order; all cells when `patterns` is empty. Throws
/// was::Error for a pattern that matches no cell, naming the cells there are.
std::vector<Cell> select_cells(const Experiment& experiment, const std::vector<std::string>& patterns);

/// Where a grid runs and how it reports.
struct GridOptions {
  std::string out;  ///< the grid directory ("" : default_grid_directory)
  /// Only the cells matching these patterns (select_cells); the others are
  /// left untouched and summary.json is not written. Empty: every cell.
  std::vector<std::string> only;
  torch::Device device = torch::kCPU;
  std::function<void(const std::string&)> on_message;  ///< one line per cell step, and the training lines
  std::function<void(const std::string& cell_dir, const RunRecord& state)> on_cell_trained;  ///< after each training
  BatchCallback on_batch;  ///< the training's batches (TrainRequest::on_batch)
};

/// Throws was::Error if `out` cannot hold the grid: a file, a grid of other
/// training settings, or a dataset that cannot be read.
void check_grid(const Experiment& experiment, const std::string& out);
/// "experiment NAME, budget B: N cells (...), out OUT".
std::string grid_headline(const Experiment& experiment, const std::string& out);

struct GridOutcome {
  std::string out;                                   ///< the grid directory used
  nlohmann::json summary = nlohmann::json::array();  ///< every cell's evaluate_run() result, in grid order
  size_t skipped = 0;   ///< cells another process was running (then summary.json is not written)
  size_t left_out = 0;  ///< cells GridOptions::only left out (then summary.json is not written)
};

/// runs/NAME, or runs/NAME-BUDGET.
std::string default_grid_directory(const Experiment& experiment);

/// Trains and evaluates every cell not finished yet (an interrupted one
/// resumes from its checkpoint, a finished one is read back), then writes
/// OUT/summary.json unless another process still runs some cell. Throws
/// was::Error before anything trains if OUT is a file, holds a grid with
/// other training settings, or a dataset cannot be read; and if a cell's
/// directory holds a run of other settings.
GridOutcome run_grid(const Experiment& experiment, GridOptions options);

}  // namespace was
