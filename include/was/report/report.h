// Reports: a grid's (`was experiment`) or one run's (`was train`) results as
// Markdown, with tables laid out as the paper's (its own figures beside the
// measured ones), the three epoch selections, robustness, cost, and gnuplot
// plots. Committed study cells (eval.json, results.json, metrics.jsonl, no
// checkpoint) are read as a grid's cells are.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/record/run_record.h"
#include "was/transforms.h"

namespace was::report {

/// One evaluated run: its evaluation (eval.json's layout, or results.json's
/// figures in it), its final results and its curves.
struct ReportedRun {
  std::string name, dir, dataset, model, label, policy;
  uint64_t seed = 0;
  nlohmann::json eval;  ///< evaluate_run()'s layout
  RunResults results;   ///< the run's own final evaluation: selections, stochastic DOM
  Policy parsed_policy;
  std::vector<EpochRecord> epochs;  ///< metrics.jsonl, one per epoch (the last line of an epoch wins)
  double train_seconds = 0, eval_seconds = 0;
};

/// Reads a run directory: a finished `was train` run (last.pt, with eval.json
/// if `was eval` or a grid wrote one), or a committed study cell. Throws
/// was::Error for an unfinished run or unreadable files.
ReportedRun load_reported_run(const std::filesystem::path& dir);

/// What a report is made of: a grid's evaluated cells in the experiment
/// file's order (models, then policies, then seeds), or one run.
struct ReportInput {
  bool grid = false;
  nlohmann::json manifest;  ///< the grid's experiment.json
  std::vector<ReportedRun> runs;
};
/// Throws was::Error when `dir` is neither a grid nor a run directory, or a
/// grid has no evaluated cell yet.
ReportInput load_report_input(const std::filesystem::path& dir);

struct ReportOptions {
  std::filesystem::path out;                           ///< the report directory (created)
  bool plots = true;                                   ///< SVG plots by gnuplot, when it is installed
  std::function<void(const std::string&)> on_warning;  ///< missing gnuplot, a plot that failed
};

/// Writes out/report.md (atomically) and its plots; returns report.md's path.
std::filesystem::path write_report(const ReportInput& input, const ReportOptions& options);

}  // namespace was::report
