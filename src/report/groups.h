// What the report's tables and plots share: runs grouped by dataset, model
// and policy label, statistics over seeds, and number formatting. Private to
// src/report/.
#pragma once

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/report/plots.h"
#include "was/report/report.h"

namespace was::report {

using Json = nlohmann::json;

/// Values over seeds: mean, sample standard deviation, and "m ± sd" text.
struct Stat {
  std::vector<double> v;
  double mean() const {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? NAN : s / double(v.size());
  }
  double sd() const {
    if (v.size() < 2) return 0.0;
    const double m = mean();
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
  }
  std::string text(int digits = 2) const {
    if (v.empty()) return "–";
    char buf[64];
    if (v.size() == 1)
      std::snprintf(buf, sizeof buf, "%.*f", digits, mean());
    else
      std::snprintf(buf, sizeof buf, "%.*f ± %.*f", digits, mean(), digits, sd());
    return buf;
  }
};

/// Runs (grouped by dataset, model, label) in first-seen order.
struct Group {
  std::string dataset, model, label, policy;
  std::vector<const ReportedRun*> runs;
};
std::vector<Group> group_runs(const std::vector<ReportedRun>& runs);

/// The AOM entry (dom false) or the first DOM entry of an evaluation's modes.
const Json* mode_of(const Json& eval, bool dom);
/// `field` of that entry in every run of `g` that has it.
Stat collect(const Group& g, bool dom, const std::string& field);
/// "final", "best_test" or "val_selected" of results.selection[curve], per run that has it.
Stat selected(const Group& g, const std::string& curve, const std::string& figure);

std::string fixed(double v, int digits);
std::string signed_fixed(double v, int digits);
std::string quoted(const std::string& s);

// The tables (Markdown), tables.cpp.
std::string results_tables(const std::vector<Group>& groups);
std::string paper_tables(const std::vector<Group>& groups);
std::string selection_tables(const std::vector<Group>& groups);
std::string robustness_tables(const std::vector<Group>& groups);

// The plots (a Markdown image line each, "" when not drawn), figures.cpp.
std::string curves_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups);
std::string selection_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups);
std::string macs_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups);
std::string robustness_plot(Plots& plots, const std::string& model, const std::string& kind,
                            const std::vector<Group>& groups);
std::string kernels_plot(Plots& plots, const ReportedRun& run);

}  // namespace was::report
