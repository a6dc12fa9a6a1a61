#include "was/report/report.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "groups.h"
#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/json_file.h"
#include "was/io/checkpoint.h"

namespace was::report {
namespace fs = std::filesystem;
namespace {

Json read_json(const fs::path& path) { return read_json_file(path.string(), "run file"); }

std::vector<EpochRecord> read_epochs(const fs::path& path) {
  std::map<int64_t, EpochRecord> by_epoch;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    try {
      const auto j = Json::parse(line);
      const auto e = EpochRecord::from_json(j);
      by_epoch[e.epoch] = e;
    } catch (const Json::exception&) {
      // A line cut short by a kill: the checkpoint has the epoch anyway.
    }
  }
  std::vector<EpochRecord> out;
  for (auto& [epoch, e] : by_epoch) out.push_back(e);
  return out;
}

RunResults read_results(const fs::path& path) {
  try {
    return RunResults::from_json(read_json(path));
  } catch (const Json::exception& e) {
    throw Error("'" + path.string() + "' is not a run's results.json: " + e.what(), "rerun the command that wrote it");
  }
}

/// A run directory written by `was train` alone: results.json in the shape of eval.json.
Json eval_from_results(const RunRecord& state, const RunResults& results) {
  Json e = {{"model", state.model.name},
            {"policy", state.policy},
            {"dataset", state.dataset},
            {"seed", state.seed},
            {"modes", Json::array()}};
  for (const char* key : {"aom", "dom"}) {
    const ModeResult* result = results.mode(key);
    if (result == nullptr) continue;
    Json m = result->to_json();
    m["mode"] = key[0] == 'a' ? std::string("AOM") : "DOM:" + std::to_string(state.dom_seed);
    m["key"] = key[0] == 'a' ? std::string("aom") : "dom:" + std::to_string(state.dom_seed);
    m["aom_macs"] = results.aom->macs;
    m["robustness"] = Json::array();
    e["modes"].push_back(m);
  }
  return e;
}

/// A cell as a study commits it (eval.json, results.json, metrics.jsonl; no
/// checkpoint): enough for every table and curve, not for kernel pictures.
ReportedRun load_committed_cell(const fs::path& dir) {
  ReportedRun r;
  r.dir = dir.string();
  r.name = dir.filename().string();
  r.eval = read_json(dir / "eval.json");
  r.results = read_results(dir / "results.json");
  r.dataset = r.eval.value("dataset", "");
  r.model = r.eval.value("model", "");
  r.policy = r.eval.value("policy", "none");
  r.seed = r.eval.value("seed", uint64_t{0});
  r.parsed_policy = Policy::parse(r.policy);
  r.label = r.eval.contains("cell") ? r.eval["cell"].value("policy_label", r.policy) : r.policy;
  r.eval_seconds = r.eval.value("eval_seconds", 0.0);
  r.train_seconds = r.eval.value("train_seconds", 0.0);
  r.epochs = read_epochs(dir / "metrics.jsonl");
  return r;
}

}  // namespace

ReportedRun load_reported_run(const fs::path& dir) {
  if (!fs::exists(dir / "last.pt") && fs::exists(dir / "eval.json") && fs::exists(dir / "results.json"))
    return load_committed_cell(dir);
  ReportedRun r;
  r.dir = dir.string();
  r.name = dir.filename().string();
  const RunRecord state = read_run_state((dir / "last.pt").string());
  if (!state.finished)
    throw Error("run '" + dir.string() + "' has not finished training", "finish it with was train --resume");
  r.dataset = state.dataset;
  r.model = state.model.name;
  r.policy = state.policy;
  r.seed = state.seed;
  r.label = state.policy == "none" ? "baseline" : state.policy;
  r.results = state.results;
  r.parsed_policy = Policy::parse(state.policy);
  if (fs::exists(dir / "eval.json")) {
    r.eval = read_json(dir / "eval.json");
    if (r.eval.contains("cell")) r.label = r.eval["cell"].value("policy_label", r.label);
    r.eval_seconds = r.eval.value("eval_seconds", 0.0);
  } else {
    r.eval = eval_from_results(state, state.results);
  }
  for (const auto& epoch : state.history) r.train_seconds += epoch.seconds;
  r.epochs = read_epochs(dir / "metrics.jsonl");
  if (r.epochs.empty())
    for (const auto& epoch : state.history) r.epochs.push_back(epoch);
  return r;
}

ReportInput load_report_input(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw Error("'" + dir.string() + "' is not a directory",
                "pass a grid directory (was experiment) or a run directory");
  ReportInput input;
  input.grid = fs::exists(dir / "experiment.json");
  if (!input.grid) {
    if (!fs::exists(dir / "last.pt"))
      throw Error("'" + dir.string() + "' holds neither experiment.json nor last.pt",
                  "pass a grid directory (was experiment) or a run directory (was train)");
    input.runs.push_back(load_reported_run(dir));
    return input;
  }
  input.manifest = read_json(dir / "experiment.json");
  std::vector<fs::path> cell_dirs;
  if (fs::is_directory(dir / "cells"))
    for (const auto& entry : fs::directory_iterator(dir / "cells"))
      if (entry.is_directory() && fs::exists(entry.path() / "eval.json")) cell_dirs.push_back(entry.path());
  std::sort(cell_dirs.begin(), cell_dirs.end());
  for (const auto& d : cell_dirs) input.runs.push_back(load_reported_run(d));
  if (input.runs.empty())
    throw Error("grid '" + dir.string() + "' has no evaluated cell yet", "run was experiment on it first");
  // The grid's own order: models, then policies, as the experiment file lists them.
  const Json models = input.manifest.value("models", Json::array());
  const Json policies = input.manifest.value("policies", Json::array());
  const auto rank = [&](const ReportedRun& r) {
    const int64_t m = std::find(models.begin(), models.end(), r.model) - models.begin();
    int64_t p = 0;
    for (size_t i = 0; i < policies.size(); ++i)
      if (policies[i].value("label", "") == r.label) p = int64_t(i);
    return std::make_tuple(r.dataset, m, p, r.seed);
  };
  std::stable_sort(input.runs.begin(), input.runs.end(),
                   [&](const auto& x, const auto& y) { return rank(x) < rank(y); });
  return input;
}

namespace {

std::string header_markdown(const ReportInput& input) {
  std::ostringstream md;
  const auto& manifest = input.manifest;
  if (input.grid) {
    const std::string budget = manifest.value("budget", "");
    md << "# Experiment " << manifest.value("name", "") << "\n\n"
       << manifest.value("description", "") << "\n\n"
       << "- budget: " << (budget.empty() ? "none (the full protocol)" : budget) << "\n- training: `"
       << manifest.value("train", Json::object()).dump() << "`\n- evaluation: `"
       << manifest.value("eval", Json::object()).dump() << "`\n"
       << "- cells evaluated: " << input.runs.size() << "\n\n";
  } else {
    const auto& run = input.runs.front();
    md << "# Run " << run.name << "\n\n- model " << run.model << ", policy " << run.policy << ", dataset "
       << run.dataset << ", seed " << run.seed << "\n\n";
  }
  return md.str();
}

/// The run of `model` whose DOM is sparsest: the clearest picture of what a draw does.
const ReportedRun* sparsest_dom(const std::vector<ReportedRun>& runs, const std::string& model) {
  const ReportedRun* sparsest = nullptr;
  double most = -1.0;
  for (const auto& r : runs)
    if (r.model == model && r.policy != "none")
      if (const Json* m = mode_of(r.eval, true))
        if (m->value("sparsity_transformed", 0.0) > most) {
          most = m->value("sparsity_transformed", 0.0);
          sparsest = &r;
        }
  return sparsest;
}

std::string plots_markdown(Plots& plots, const std::vector<ReportedRun>& runs, const std::vector<Group>& groups) {
  std::vector<std::string> models;
  for (const auto& g : groups)
    if (std::find(models.begin(), models.end(), g.model) == models.end()) models.push_back(g.model);
  std::ostringstream md;
  md << "\n## Plots\n\n";
  for (const auto& model : models) {
    md << curves_plot(plots, model, groups) << "\n"
       << selection_plot(plots, model, groups) << "\n"
       << macs_plot(plots, model, groups) << "\n";
    for (const std::string kind : {"rotate", "translate", "crop"}) md << robustness_plot(plots, model, kind, groups);
    if (const ReportedRun* run = sparsest_dom(runs, model)) md << "\n" << kernels_plot(plots, *run);
    md << "\n";
  }
  return md.str();
}

std::string cost_markdown(const std::vector<ReportedRun>& runs) {
  std::ostringstream md;
  md << "\n## Cost\n\n| run | training (s) | evaluation (s) | final training img/s |\n|---|---:|---:|---:|\n";
  double total = 0;
  for (const auto& r : runs) {
    const double ips = r.epochs.empty() ? 0.0 : r.epochs.back().images_per_s;
    md << "| " << r.name << " | " << fixed(r.train_seconds, 0) << " | " << fixed(r.eval_seconds, 0) << " | "
       << fixed(ips, 0) << " |\n";
    total += r.train_seconds + r.eval_seconds;
  }
  md << "\nTotal: " << fixed(total / 60.0, 1) << " minutes of training and evaluation.\n";
  return md.str();
}

}  // namespace

fs::path write_report(const ReportInput& input, const ReportOptions& options) {
  if (input.runs.empty()) throw Error("nothing to report: no evaluated run");
  const fs::path& out = options.out;
  if (fs::exists(out) && !fs::is_directory(out))
    throw Error("--out '" + out.string() + "' exists and is not a directory");
  fs::create_directories(out);
  Plots plots(out, options.plots, options.on_warning);
  const auto groups = group_runs(input.runs);
  std::ostringstream md;
  md << header_markdown(input) << "## Results\n\n"
     << results_tables(groups) << paper_tables(groups) << selection_tables(groups) << robustness_tables(groups);
  if (plots.enabled()) md << plots_markdown(plots, input.runs, groups);
  md << cost_markdown(input.runs);
  const fs::path path = out / "report.md";
  write_file_atomically(path.string(), md.str(), "report");
  return path;
}

}  // namespace was::report
