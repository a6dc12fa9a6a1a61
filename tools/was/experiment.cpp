// `was experiment CONFIG`: the options, and the grid's lines and tables on
// the terminal; the grid itself runs in the library (was/run/experiment.h).
#include "experiment.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "evaluation.h"
#include "progress.h"
#include "train.h"
#include "was/core/error.h"
#include "was/run/experiment.h"

namespace was::cli {
namespace {

struct ExperimentArgs {
  std::string config, out, budget;
  std::vector<std::string> data_dirs;  // NAME=PATH
  std::vector<std::string> only;       // cell-name patterns
  bool dry_run = false;
  RuntimeOptions runtime;
};

void run_experiment(ExperimentArgs& a) {
  // Everything is validated before any cell trains.
  Experiment e = Experiment::load(a.config, a.budget);
  for (const auto& spec : a.data_dirs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("--data-dir '" + spec + "' is not NAME=PATH", "e.g. --data-dir cifar10=/data/cifar10");
    e.set_data_dir(spec.substr(0, eq), spec.substr(eq + 1));
  }
  if (a.out.empty()) a.out = default_grid_directory(e);
  if (a.dry_run) {
    check_grid(e, a.out);
    std::fprintf(stderr, "%s\n", grid_headline(e, a.out).c_str());
    for (const auto& c : select_cells(e, a.only)) std::printf("%s\n", c.name().c_str());
    return;
  }
  GridOptions options;
  options.out = a.out;
  options.only = a.only;
  options.device = a.runtime.apply();
  options.on_message = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  options.on_batch = progress_on_stderr();
  options.on_cell_trained = [](const std::string& dir, const RunRecord& state) { print_results(state, dir); };
  const GridOutcome outcome = run_grid(e, options);
  if (outcome.skipped > 0 || outcome.left_out > 0) return;
  print_evaluations(outcome.summary);
  std::fprintf(stderr, "\ngrid finished: %s/summary.json; a report with plots: was report %s\n", a.out.c_str(),
               a.out.c_str());
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  auto args = std::make_shared<ExperimentArgs>();
  auto* cmd = app.add_subcommand(
      "experiment",
      "run a grid of trainings and evaluations (models x policies x datasets x seeds) from a JSON file; resumable");
  cmd->add_option("config", args->config, "experiment file (JSON), e.g. configs/table2.json")->required();
  cmd->add_option("--out", args->out, "grid directory (default runs/NAME[-BUDGET])");
  cmd->add_option("--budget", args->budget,
                  "a budget named in the file (e.g. cpu), or a factor in (0, 1] that scales the epochs");
  cmd->add_option("--data-dir", args->data_dirs, "where a dataset lives, NAME=PATH (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--only", args->only,
                  "run only the cells whose names match (repeatable; '*' and '?' wildcards), e.g. '*-CT-s2'")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--dry-run", args->dry_run, "validate the file and list the cells without running them");
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_experiment(*args); });
}

}  // namespace was::cli
