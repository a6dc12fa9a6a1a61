#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "groups.h"
#include "was/paper/tables.h"

namespace was::report {

std::string results_tables(const std::vector<Group>& groups) {
  std::ostringstream md;
  // Table 2 layout: one row per dataset and model, AOM/DOM per policy.
  std::vector<std::string> labels;
  std::map<std::string, bool> has_dom;
  for (const auto& g : groups) {
    if (std::find(labels.begin(), labels.end(), g.label) == labels.end()) labels.push_back(g.label);
    has_dom[g.label] = has_dom[g.label] || !collect(g, true, "top1").v.empty();
  }
  md << "### Top-1 (%), AOM and DOM (mean ± sd over seeds)\n\n| dataset | model |";
  for (const auto& l : labels) md << (has_dom[l] ? " " + l + " AOM | " + l + " DOM |" : " " + l + " |");
  md << " seeds |\n|---|---|";
  for (const auto& l : labels) md << (has_dom[l] ? "---:|---:|" : "---:|");
  md << "---:|\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& g : groups)
    if (std::find(rows.begin(), rows.end(), std::make_pair(g.dataset, g.model)) == rows.end())
      rows.emplace_back(g.dataset, g.model);
  for (const auto& [dataset, model] : rows) {
    md << "| " << dataset << " | " << model << " |";
    size_t seeds = 0;
    for (const auto& l : labels) {
      const Group* g = nullptr;
      for (const auto& x : groups)
        if (x.dataset == dataset && x.model == model && x.label == l) g = &x;
      if (!g) {
        md << (has_dom[l] ? " – | – |" : " – |");
        continue;
      }
      seeds = std::max(seeds, g->runs.size());
      md << " " << collect(*g, false, "top1").text() << " |";
      if (has_dom[l]) md << " " << collect(*g, true, "top1").text() << " |";
    }
    md << " " << seeds << " |\n";
  }

  // Table 6 layout: MACs and sparsity per policy.
  md << "\n### MACs and sparsity (Table 6 layout)\n\n"
     << "| dataset | model | policy | AOM MACs (M) | DOM MACs (M) | DOM / AOM | sparsity of WAS layers | "
        "sparsity of all convs | AOM top-1 | DOM top-1 | DOM top-1 over DOM seeds |\n"
     << "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& g : groups) {
    const Stat aom_macs = collect(g, false, "macs"), dom_macs = collect(g, true, "macs");
    Stat profile;
    for (const auto* r : g.runs)
      if (r->eval.contains("dom_profile")) profile.v.push_back(r->eval["dom_profile"]["top1_mean"].get<double>());
    std::string profile_text = "–";
    if (!profile.v.empty()) {
      Stat spread;
      for (const auto* r : g.runs)
        if (r->eval.contains("dom_profile")) spread.v.push_back(r->eval["dom_profile"]["top1_std"].get<double>());
      profile_text = fixed(profile.mean(), 2) + " (sd across seeds " + fixed(spread.mean(), 2) + ", " +
                     std::to_string(g.runs.front()->eval["dom_profile"]["seeds"].size()) + " seeds)";
    }
    const bool dom = !dom_macs.v.empty();
    md << "| " << g.dataset << " | " << g.model << " | " << g.label << " (" << g.policy << ") | "
       << fixed(aom_macs.mean() / 1e6, 2) << " | " << (dom ? fixed(dom_macs.mean() / 1e6, 2) : "–") << " | "
       << (dom ? fixed(100.0 * dom_macs.mean() / aom_macs.mean(), 1) + "%" : "–") << " | "
       << (dom ? fixed(100.0 * collect(g, true, "sparsity_transformed").mean(), 1) + "%" : "–") << " | "
       << (dom ? fixed(100.0 * collect(g, true, "sparsity_conv").mean(), 1) + "%" : "–") << " | "
       << collect(g, false, "top1").text() << " | " << (dom ? collect(g, true, "top1").text() : "–") << " | "
       << profile_text << " |\n";
  }

  // DOM ensembles, where evaluated.
  bool ensembles = false;
  for (const auto& g : groups)
    for (const auto* r : g.runs) ensembles = ensembles || r->eval.contains("ensemble");
  if (ensembles) {
    md << "\n### DOM ensembles (softmax averaged over n draws)\n\n"
       << "| dataset | model | policy | draws | ensemble top-1 | single DOM top-1 | AOM top-1 | ensemble MACs (M) | "
          "vs AOM |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& g : groups) {
      Stat top1, macs, ratio;
      size_t draws = 0;
      for (const auto* r : g.runs)
        if (r->eval.contains("ensemble")) {
          const auto& e = r->eval["ensemble"];
          top1.v.push_back(e["top1"].get<double>());
          macs.v.push_back(e["macs"].get<double>());
          ratio.v.push_back(e["macs_vs_aom"].get<double>());
          draws = e["seeds"].size();
        }
      if (top1.v.empty()) continue;
      md << "| " << g.dataset << " | " << g.model << " | " << g.label << " | " << draws << " | " << top1.text() << " | "
         << collect(g, true, "top1").text() << " | " << collect(g, false, "top1").text() << " | "
         << fixed(macs.mean() / 1e6, 2) << " | " << fixed(ratio.mean(), 2) << "x |\n";
    }
  }
  return md.str();
}

/// Final, best-test and validation-selected epochs, per curve.
std::string selection_tables(const std::vector<Group>& groups) {
  static const std::map<std::string, std::string> names = {
      {"aom", "AOM, running statistics"},
      {"dom", "fixed DOM, running statistics"},
      {"sdom", "stochastic DOM, running statistics"},
      {"aom_paper", "AOM, BatchNorm in training mode (the paper's evaluation)"},
      {"dom_paper", "fixed DOM, BatchNorm in training mode"},
      {"sdom_paper", "stochastic DOM, BatchNorm in training mode (the paper's DOM)"},
      {"aom_bn", "AOM, BatchNorm re-estimated per mode (as the final evaluation)"},
      {"dom_bn", "fixed DOM, BatchNorm re-estimated per mode (as the final evaluation)"}};
  std::ostringstream md;
  bool any = false;
  for (const auto& g : groups)
    for (const auto* r : g.runs) any = any || !r->results.selection.empty();
  if (!any) return "";
  md << "\n### Which epoch: final, best on the test set (the paper's selection), best on the validation split\n\n"
     << "Test top-1 (%) on the curve's test images, mean ± sd over seeds. *Best test* picks the epoch on the test "
        "set itself, as the released code's `acc_best` does: an optimistic figure. *Validation-selected* is the "
        "test top-1 at the epoch the held-out validation split picks.\n\n"
     << "| dataset | model | policy | curve | final | best test (selected on test) | validation-selected | "
        "best test − validation-selected |\n|---|---|---|---|---:|---:|---:|---:|\n";
  for (const auto& g : groups)
    for (const auto& [curve, name] : names) {
      const Stat fin = selected(g, curve, "final");
      if (fin.v.empty()) continue;
      const Stat best = selected(g, curve, "best_test"), val = selected(g, curve, "val_selected");
      md << "| " << g.dataset << " | " << g.model << " | " << g.label << " | " << name << " | " << fin.text() << " | "
         << best.text() << " | " << val.text() << " | "
         << (val.v.empty() ? "–" : signed_fixed(best.mean() - val.mean(), 2)) << " |\n";
    }
  // The stochastic DOM of the final weights, where the run measured it.
  bool sdom = false;
  for (const auto& g : groups)
    for (const auto* r : g.runs) sdom = sdom || r->results.stochastic_dom.has_value();
  if (sdom) {
    md << "\n### The stochastic DOM of the final weights (a fresh draw per test batch)\n\n"
       << "| dataset | model | policy | passes | running statistics | BatchNorm in training mode (the paper's) | fixed "
          "DOM (re-estimated statistics) |\n|---|---|---|---:|---:|---:|---:|\n";
    for (const auto& g : groups) {
      Stat running, paper;
      int64_t passes = 0;
      for (const auto* r : g.runs)
        if (const auto& sd = r->results.stochastic_dom) {
          running.v.push_back(sd->running.mean);
          paper.v.push_back(sd->paper.mean);
          passes = int64_t(sd->paper.top1.size());
        }
      if (running.v.empty()) continue;
      md << "| " << g.dataset << " | " << g.model << " | " << g.label << " | " << passes << " | " << running.text()
         << " | " << paper.text() << " | " << collect(g, true, "top1").text() << " |\n";
    }
  }
  return md.str();
}

/// The paper's own figure beside each measured one that has one.
std::string paper_tables(const std::vector<Group>& groups) {
  std::ostringstream rows;
  for (const auto& g : groups) {
    const Policy& policy = g.runs.front()->parsed_policy;
    const auto paper_aom = paper::top1(g.model, policy, g.dataset, "aom");
    const auto paper_dom = paper::top1(g.model, policy, g.dataset, "dom");
    if (!paper_aom && !paper_dom) continue;
    // The paper's number is the best test epoch of the released evaluation where the run has it.
    const bool released = !selected(g, "aom_paper", "best_test").v.empty();
    const Stat aom = released ? selected(g, "aom_paper", "best_test") : collect(g, false, "top1");
    const Stat aom_val = released ? selected(g, "aom_paper", "val_selected") : Stat{};
    const Stat dom = released ? selected(g, "sdom_paper", "best_test") : collect(g, true, "top1");
    const auto cell = [](const Stat& ours, const std::optional<double>& theirs) {
      if (!theirs) return std::string(" – | – |");
      if (ours.v.empty()) return " – | " + fixed(*theirs, 2) + " |";
      return " " + ours.text() + " | " + fixed(*theirs, 2) + " (" + signed_fixed(ours.mean() - *theirs, 2) + ") |";
    };
    rows << "| " << g.dataset << " | " << g.model << " | " << g.label << " | "
         << (released ? "released code's (best test epoch)" : "project's (final, re-estimated statistics)") << " |"
         << cell(aom, paper_aom) << " " << (aom_val.v.empty() ? "–" : aom_val.text()) << " |" << cell(dom, paper_dom)
         << "\n";
  }
  if (rows.str().empty()) return "";
  std::ostringstream md;
  md << "\n### Beside the paper (its Table 2, and Table 6 for VGG-16's DOM rows)\n\n"
     << "Measured top-1 (%) next to the paper's, the difference in brackets. Where a run evaluated as the released "
        "code does (`--protocol paper`), the measured AOM is its best test epoch with BatchNorm in training mode and "
        "the DOM the stochastic DOM's best test epoch, selected as the paper selected; the validation-selected AOM "
        "stands beside it. Otherwise the project's final figures. Budgets below the paper's 500 epochs on all "
        "50,000 images are not expected to reach its numbers: compare the differences between policies.\n\n"
     << "| dataset | model | policy | evaluation | AOM measured | AOM paper (difference) | AOM validation-selected | "
        "DOM measured | DOM paper (difference) |\n|---|---|---|---|---:|---:|---:|---:|---:|\n"
     << rows.str();
  return md.str();
}

std::string robustness_tables(const std::vector<Group>& groups) {
  std::ostringstream md;
  for (const std::string kind : {"rotate", "translate", "crop"}) {
    std::vector<std::string> augs;
    for (const auto& g : groups)
      for (const auto* r : g.runs)
        for (const auto& m : r->eval["modes"])
          for (const auto& a : m["robustness"])
            if (a["kind"] == kind && std::find(augs.begin(), augs.end(), a["augmentation"]) == augs.end())
              augs.push_back(a["augmentation"]);
    if (augs.empty()) continue;
    md << "\n### Top-1 drop rate under test-time " << kind
       << " (relative %, absolute points in brackets; mean over seeds)\n\n| dataset | model | policy | mode | clean "
          "top-1 |";
    for (const auto& a : augs) md << " " << a << " |";
    md << "\n|---|---|---|---|---:|";
    for (size_t i = 0; i < augs.size(); ++i) md << "---:|";
    md << "\n";
    for (const auto& g : groups)
      for (bool dom : {false, true}) {
        std::map<std::string, std::pair<Stat, Stat>> drops;
        for (const auto* r : g.runs)
          if (const Json* m = mode_of(r->eval, dom))
            for (const auto& a : (*m)["robustness"]) {
              drops[a["augmentation"]].first.v.push_back(a["drop_relative"].get<double>());
              drops[a["augmentation"]].second.v.push_back(a["drop_absolute"].get<double>());
            }
        bool any = false;
        for (const auto& a : augs) any = any || drops.count(a);
        if (!any) continue;
        md << "| " << g.dataset << " | " << g.model << " | " << g.label << " | " << (dom ? "DOM" : "AOM") << " | "
           << collect(g, dom, "top1").text() << " |";
        for (const auto& a : augs)
          md << (drops.count(a)
                     ? " " + fixed(drops[a].first.mean(), 1) + " (" + fixed(drops[a].second.mean(), 1) + ") |"
                     : " – |");
        md << "\n";
      }
  }
  return md.str();
}

}  // namespace was::report
