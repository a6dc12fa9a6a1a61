// `was report DIR`: a Markdown report with the paper's tables and gnuplot
// plots, from a grid directory (`was experiment`) or a single run directory.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "common.h"
#include "plots.h"
#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/io/checkpoint.h"
#include "was/paper/tables.h"

namespace was::cli {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::json;

struct ReportArgs {
  std::string dir, out;
  bool no_plots = false;
};

/// One evaluated run: its evaluation (eval.json or results.json) and curves.
struct RunRecord {
  std::string name, dir, dataset, model, label, policy;
  uint64_t seed = 0;
  Json eval;     // evaluate_run()'s layout
  Json results;  // the run's own final evaluation (results.json): selections, stochastic DOM
  Policy parsed_policy;
  std::vector<Json> epochs;  // metrics.jsonl, one object per epoch (last line wins)
  double train_seconds = 0, eval_seconds = 0;
};

Json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read '" + path.string() + "'");
  try {
    return Json::parse(in);
  } catch (const Json::parse_error& e) {
    throw Error("'" + path.string() + "' is not valid JSON: " + e.what(), "rerun the command that wrote it");
  }
}

std::vector<Json> read_epochs(const fs::path& path) {
  std::map<int64_t, Json> by_epoch;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    try {
      const auto j = Json::parse(line);
      by_epoch[j.value("epoch", int64_t{0})] = j;
    } catch (const Json::parse_error&) {
      // A line cut short by a kill: the checkpoint has the epoch anyway.
    }
  }
  std::vector<Json> out;
  for (auto& [epoch, j] : by_epoch) out.push_back(j);
  return out;
}

/// A run directory written by `was train` alone: results.json in the shape of eval.json.
Json eval_from_results(const RunState& state, const Json& results) {
  Json e = {{"model", state.model.name},
            {"policy", state.policy},
            {"dataset", state.dataset},
            {"seed", state.seed},
            {"modes", Json::array()}};
  for (const char* key : {"aom", "dom"}) {
    if (!results.contains(key)) continue;
    Json m = results[key];
    m["mode"] = key[0] == 'a' ? std::string("AOM") : "DOM:" + std::to_string(state.dom_seed);
    m["key"] = key[0] == 'a' ? std::string("aom") : "dom:" + std::to_string(state.dom_seed);
    m["aom_macs"] = results["aom"].value("macs", int64_t{0});
    m["robustness"] = Json::array();
    e["modes"].push_back(m);
  }
  return e;
}

/// A cell as a study commits it (eval.json, results.json, metrics.jsonl; no
/// checkpoint): enough for every table and curve, not for kernel pictures.
RunRecord load_committed_cell(const fs::path& dir) {
  RunRecord r;
  r.dir = dir.string();
  r.name = dir.filename().string();
  r.eval = read_json(dir / "eval.json");
  r.results = read_json(dir / "results.json");
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

RunRecord load_run(const fs::path& dir) {
  if (!fs::exists(dir / "last.pt") && fs::exists(dir / "eval.json") && fs::exists(dir / "results.json"))
    return load_committed_cell(dir);
  RunRecord r;
  r.dir = dir.string();
  r.name = dir.filename().string();
  const RunState state = read_run_state((dir / "last.pt").string());
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
  for (const auto& epoch : state.history) r.train_seconds += epoch.value("seconds", 0.0);
  r.epochs = read_epochs(dir / "metrics.jsonl");
  if (r.epochs.empty())
    for (const auto& epoch : state.history) r.epochs.push_back(epoch);
  return r;
}

// --- statistics and formatting ---------------------------------------------------------

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

const Json* mode_of(const Json& eval, bool dom) {
  for (const auto& m : eval["modes"]) {
    const bool is_dom = m["key"].get<std::string>() != "aom";
    if (is_dom == dom) return &m;  // the first DOM entry is the run's primary seed
  }
  return nullptr;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// Runs (grouped by dataset, model, label) in first-seen order.
struct Group {
  std::string dataset, model, label, policy;
  std::vector<const RunRecord*> runs;
};

std::vector<Group> group_runs(const std::vector<RunRecord>& runs) {
  std::vector<Group> groups;
  for (const auto& r : runs) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
      return g.dataset == r.dataset && g.model == r.model && g.label == r.label;
    });
    if (it == groups.end()) {
      groups.push_back({r.dataset, r.model, r.label, r.policy, {}});
      it = groups.end() - 1;
    }
    it->runs.push_back(&r);
  }
  return groups;
}

Stat collect(const Group& g, bool dom, const std::string& field) {
  Stat s;
  for (const auto* r : g.runs)
    if (const Json* m = mode_of(r->eval, dom)) s.v.push_back(m->value(field, NAN));
  return s;
}

// --- plots ----------------------------------------------------------------------------------

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string curves_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups) {
  // Per policy: mean over seeds per epoch of train loss, AOM and DOM top-1.
  std::ostringstream data;
  std::vector<std::pair<std::string, bool>> series;  // label, has DOM
  int64_t last_epoch = 1;
  for (const auto& g : groups) {
    if (g.model != model) continue;
    std::map<int64_t, std::array<Stat, 3>> per_epoch;
    for (const auto* r : g.runs)
      for (const auto& e : r->epochs) {
        auto& s = per_epoch[e.value("epoch", int64_t{0})];
        s[0].v.push_back(e.value("train_loss", NAN));
        if (e.contains("test_top1_aom")) s[1].v.push_back(e["test_top1_aom"].get<double>());
        if (e.contains("test_top1_dom")) s[2].v.push_back(e["test_top1_dom"].get<double>());
      }
    data << "# " << g.label << "\n";
    bool dom = false;
    for (auto& [epoch, s] : per_epoch) {
      dom = dom || !s[2].v.empty();
      data << epoch << " " << s[0].mean() << " " << (s[1].v.empty() ? NAN : s[1].mean()) << " "
           << (s[2].v.empty() ? NAN : s[2].mean()) << "\n";
    }
    data << "\n\n";
    series.emplace_back(g.label, dom);
    if (!per_epoch.empty()) last_epoch = std::max(last_epoch, per_epoch.rbegin()->first);
  }
  if (series.empty()) return "";
  const std::string title = model + ": training curves (mean over seeds)";
  std::ostringstream gp;
  gp << "set multiplot layout 1,2 title \"" << title << "\"\nset xtics " << std::max<int64_t>(1, (last_epoch + 9) / 10)
     << "\nset xlabel 'epoch'\nset ylabel 'training loss (cross-entropy)'\n"
     << "set title 'training loss'\nset key inside top right\nplot ";
  for (size_t i = 0; i < series.size(); ++i)
    gp << (i ? ", " : "") << "datafile index " << i << " using 1:2 with linespoints lw 2 title "
       << quoted(series[i].first);
  gp << "\nset ylabel 'test top-1 (%)'\nset title 'test top-1 (AOM solid, DOM dashed)'\nset key inside bottom "
        "right\nplot ";
  for (size_t i = 0; i < series.size(); ++i) {
    gp << (i ? ", " : "") << "datafile index " << i << " using 1:3 with linespoints lw 2 lc " << i + 1 << " title "
       << quoted(series[i].first + " AOM");
    if (series[i].second)
      gp << ", datafile index " << i << " using 1:4 with linespoints lw 2 dt 2 lc " << i + 1 << " title "
         << quoted(series[i].first + " DOM");
  }
  gp << "\nunset multiplot\n";
  return plots.render("curves-" + model, title, data.str(), gp.str());
}

/// The curve a selection is made on (the released evaluation's AOM where the
/// runs have it), mean over seeds, with every seed's selected epochs marked.
std::string selection_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups) {
  std::string curve = "aom";  // the best-founded curve the runs have
  for (const char* preferred : {"aom_paper", "aom_bn"})
    for (const auto& g : groups)
      for (const auto* r : g.runs)
        if (g.model == model && r->results.contains("selection") && r->results["selection"].contains(preferred))
          curve = preferred;
  std::ostringstream data;
  std::vector<std::string> labels;
  for (const auto& g : groups) {
    if (g.model != model) continue;
    std::map<int64_t, Stat> test, val;
    for (const auto* r : g.runs)
      for (const auto& e : r->epochs) {
        const int64_t epoch = e.value("epoch", int64_t{0});
        if (e.contains("test_top1_" + curve)) test[epoch].v.push_back(e["test_top1_" + curve].get<double>());
        if (e.contains("val_top1_" + curve)) val[epoch].v.push_back(e["val_top1_" + curve].get<double>());
      }
    if (test.empty()) continue;
    data << "# " << g.label << ": epoch, test, validation (means over seeds)\n";
    for (auto& [epoch, t] : test)
      data << epoch << " " << t.mean() << " " << (val.count(epoch) ? val[epoch].mean() : NAN) << "\n";
    data << "\n\n# " << g.label << ": each seed's best-test and validation-selected epochs\n";
    for (const auto* r : g.runs) {
      if (!r->results.contains("selection") || !r->results["selection"].contains(curve)) continue;
      const auto& sel = r->results["selection"][curve];
      data << sel["best_test_epoch"].get<int64_t>() << " " << sel["best_test"].get<double>() << " "
           << (sel.contains("val_selected_epoch") ? std::to_string(sel["val_selected_epoch"].get<int64_t>()) : "NaN")
           << " " << (sel.contains("val_selected") ? fixed(sel["val_selected"].get<double>(), 4) : "NaN") << "\n";
    }
    data << "\n\n";
    labels.push_back(g.label);
  }
  if (labels.empty()) return "";
  std::ostringstream gp;
  gp << "set xlabel 'epoch'\nset ylabel 'top-1 (%): test solid, validation dotted'\nset key inside bottom right\n"
     << "set datafile missing 'NaN'\nplot ";
  for (size_t i = 0; i < labels.size(); ++i) {
    const size_t c = i + 1;
    gp << (i ? ", " : "") << "datafile index " << 2 * i << " using 1:2 with lines lw 2 lc " << c << " title "
       << quoted(labels[i]) << ", datafile index " << 2 * i << " using 1:3 with lines lw 1 dt 3 lc " << c
       << " notitle, datafile index " << 2 * i + 1 << " using 1:2 with points pt 9 ps 1.6 lc " << c
       << (i ? " notitle" : " title " + quoted("best test epoch")) << ", datafile index " << 2 * i + 1
       << " using 3:4 with points pt 7 ps 1.3 lc " << c
       << (i ? " notitle" : " title " + quoted("validation-selected epoch"));
  }
  gp << "\n";
  const std::string what = curve == "aom_paper" ? "AOM as the released code evaluates it"
                           : curve == "aom_bn"  ? "AOM, BatchNorm re-estimated per mode"
                                                : "AOM, running statistics";
  return plots.render("selection-" + model,
                      model + ": " + what + ", with the epochs each seed selects (▲ on test, ● on validation)",
                      data.str(), gp.str());
}

std::string macs_plot(Plots& plots, const std::string& model, const std::vector<Group>& groups) {
  std::ostringstream data;
  std::vector<std::string> labels;
  for (const auto& g : groups) {
    if (g.model != model) continue;
    data << "# " << g.label << "\n";
    for (bool dom : {false, true}) {
      const Stat top1 = collect(g, dom, "top1"), macs = collect(g, dom, "macs");
      if (top1.v.empty()) continue;
      data << macs.mean() / 1e6 << " " << top1.mean() << " " << top1.sd() << " " << (dom ? "DOM" : "AOM") << "\n";
    }
    data << "\n\n";
    labels.push_back(g.label);
  }
  if (labels.empty()) return "";
  std::ostringstream gp;
  gp << "set xlabel 'MACs per image (millions)'\nset ylabel 'test top-1 (%), mean ± sd over seeds'\n"
     << "set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08\nplot ";
  for (size_t i = 0; i < labels.size(); ++i)
    gp << (i ? ", " : "") << "datafile index " << i << " using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 title "
       << quoted(labels[i] + " (AOM → DOM)") << ", datafile index " << i
       << " using 1:2:4 with labels offset char 1,1 notitle";
  gp << "\n";
  return plots.render("macs-" + model, model + ": top-1 against MACs, AOM and DOM per policy", data.str(), gp.str());
}

std::string robustness_plot(Plots& plots, const std::string& model, const std::string& kind,
                            const std::vector<Group>& groups) {
  std::ostringstream data;
  std::vector<std::string> titles;
  std::vector<int> colours;  // one per policy: AOM solid, DOM dashed in the same colour
  int policy_index = 0;
  for (const auto& g : groups) {
    if (g.model != model) continue;
    ++policy_index;
    for (bool dom : {false, true}) {
      std::map<double, Stat> by_strength;
      for (const auto* r : g.runs)
        if (const Json* m = mode_of(r->eval, dom))
          for (const auto& a : (*m)["robustness"])
            if (a["kind"] == kind)
              by_strength[a["strength"].get<double>()].v.push_back(a["drop_relative"].get<double>());
      if (by_strength.empty()) continue;
      data << "# " << g.label << (dom ? " DOM" : " AOM") << "\n0 0 0\n";
      for (auto& [strength, s] : by_strength) data << strength << " " << s.mean() << " " << s.sd() << "\n";
      data << "\n\n";
      titles.push_back(g.label + (dom ? " DOM" : " AOM"));
      colours.push_back(policy_index);
    }
  }
  if (titles.empty()) return "";
  const std::string xlabel = kind == "rotate"      ? "largest rotation angle (degrees)"
                             : kind == "translate" ? "largest shift (fraction of the image side)"
                                                   : "smallest area removed by the crop (fraction)";
  std::ostringstream gp;
  gp << "set xlabel '" << xlabel << "'\nset ylabel 'top-1 drop rate (%, relative to clean)'\nplot ";
  for (size_t i = 0; i < titles.size(); ++i)
    gp << (i ? ", " : "") << "datafile index " << i << " using 1:2 with linespoints lw 2 pt 7 lc " << colours[i]
       << " dt " << (titles[i].find(" DOM") != std::string::npos ? 2 : 1) << " title " << quoted(titles[i]);
  gp << "\n";
  return plots.render("robustness-" + model + "-" + kind, model + ": top-1 drop under test-time " + kind, data.str(),
                      gp.str());
}

/// The first transformed layer of a run as PW and as its DOM shadow weights.
std::string kernels_plot(Plots& plots, const RunRecord& run) {
  if (!plots.enabled() || !fs::exists(fs::path(run.dir) / "last.pt")) return "";
  Checkpoint ckpt;
  try {
    ckpt = load_checkpoint((fs::path(run.dir) / "last.pt").string());
  } catch (const Error& e) {
    std::cerr << "warning: no kernel picture: " << e.what() << "\n";
    return "";
  }
  auto& net = *ckpt.network;
  if (!net.shadow().enabled()) return "";
  torch::NoGradGuard no_grad;
  // The first layer the DOM draw changes: an untouched kernel shows nothing.
  const auto* chosen = &net.shadow().layers().front();
  for (const auto& l : net.shadow().layers())
    if (!torch::equal(l.plain_weight(), l.dom_weight(ckpt.state.dom_seed))) {
      chosen = &l;
      break;
    }
  const auto& layer = *chosen;
  const auto pw = layer.plain_weight().detach().to(torch::kCPU).to(torch::kDouble);
  const auto sw = layer.dom_weight(ckpt.state.dom_seed).to(torch::kCPU).to(torch::kDouble);
  const int64_t count = std::min<int64_t>(8, pw.size(0)), kh = pw.size(2), kw = pw.size(3);
  // A matrix: PW kernels side by side on top, SW below, one blank column/row between.
  const int64_t cols = count * (kw + 1) - 1, rows = 2 * kh + 1;
  std::ostringstream data;
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t x = 0; x < cols; ++x) {
      const int64_t k = x / (kw + 1), kx = x % (kw + 1);
      const bool top = y < kh, gap = kx == kw || y == kh;
      double v = NAN;
      if (!gap) v = (top ? pw : sw)[k][0][top ? y : y - kh - 1][kx].item<double>();
      data << (std::isnan(v) ? std::string("NaN") : fixed(v, 6)) << (x + 1 < cols ? " " : "\n");
    }
  }
  const double range = std::max(1e-12, pw.slice(0, 0, count).select(1, 0).abs().max().item<double>());
  std::ostringstream gp;
  gp << "set size ratio -1\nset yrange [" << rows - 0.5 << ":-0.5]\nset xrange [-0.5:" << cols - 0.5 << "]\n"
     << "set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')\nset cbrange [" << -range << ":" << range
     << "]\nset cblabel 'weight value'\nunset grid\nset xtics out nomirror (";
  for (int64_t k = 0; k < count; ++k) gp << (k ? ", " : "") << "'" << k << "' " << k * (kw + 1) + (kw - 1) / 2.0;
  gp << ")\nset xlabel 'output filter (its kernel on input channel 0), " << kh << "x" << kw
     << " taps each'\nset ytics ('PW' " << (kh - 1) / 2.0 << ", 'SW (DOM)' " << kh + 1 + (kh - 1) / 2.0
     << ")\nset datafile missing 'NaN'\nplot datafile matrix with image notitle\n";
  return plots.render("kernels-" + run.model,
                      run.model + " " + run.label + ", layer " + layer.name() + ": first " + std::to_string(count) +
                          " kernels as PW (top) and DOM shadow weights (bottom)",
                      data.str(), gp.str(), 340);
}

// --- the report ---------------------------------------------------------------------------

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

/// A selection figure of every run of a group: results.selection[curve][key].
Stat selected(const Group& g, const std::string& curve, const std::string& key) {
  Stat s;
  for (const auto* r : g.runs)
    if (r->results.contains("selection") && r->results["selection"].contains(curve) &&
        r->results["selection"][curve].contains(key))
      s.v.push_back(r->results["selection"][curve][key].get<double>());
  return s;
}

std::string signed_fixed(double v, int digits) { return (v >= 0 ? "+" : "") + fixed(v, digits); }

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
    for (const auto* r : g.runs) any = any || (r->results.contains("selection") && !r->results["selection"].empty());
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
    for (const auto* r : g.runs) sdom = sdom || r->results.contains("stochastic_dom");
  if (sdom) {
    md << "\n### The stochastic DOM of the final weights (a fresh draw per test batch)\n\n"
       << "| dataset | model | policy | passes | running statistics | BatchNorm in training mode (the paper's) | fixed "
          "DOM (re-estimated statistics) |\n|---|---|---|---:|---:|---:|---:|\n";
    for (const auto& g : groups) {
      Stat running, paper;
      int64_t passes = 0;
      for (const auto* r : g.runs)
        if (r->results.contains("stochastic_dom")) {
          running.v.push_back(r->results["stochastic_dom"]["running"]["mean"].get<double>());
          paper.v.push_back(r->results["stochastic_dom"]["paper"]["mean"].get<double>());
          passes = r->results["stochastic_dom"]["paper"]["repeats"].get<int64_t>();
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

void run_report(const ReportArgs& a) {
  const fs::path dir(a.dir);
  if (!fs::is_directory(dir))
    throw Error("'" + a.dir + "' is not a directory", "pass a grid directory (was experiment) or a run directory");
  const bool grid = fs::exists(dir / "experiment.json");
  std::vector<RunRecord> runs;
  Json manifest;
  if (grid) {
    manifest = read_json(dir / "experiment.json");
    std::vector<fs::path> cell_dirs;
    if (fs::is_directory(dir / "cells"))
      for (const auto& entry : fs::directory_iterator(dir / "cells"))
        if (entry.is_directory() && fs::exists(entry.path() / "eval.json")) cell_dirs.push_back(entry.path());
    std::sort(cell_dirs.begin(), cell_dirs.end());
    for (const auto& d : cell_dirs) runs.push_back(load_run(d));
    // The grid's own order: models, then policies, as the experiment file lists them.
    const auto rank = [&](const RunRecord& r) {
      const auto& models = manifest["models"];
      const auto& policies = manifest["policies"];
      int64_t m = std::find(models.begin(), models.end(), r.model) - models.begin();
      int64_t p = 0;
      for (size_t i = 0; i < policies.size(); ++i)
        if (policies[i]["label"] == r.label) p = int64_t(i);
      return std::make_tuple(r.dataset, m, p, r.seed);
    };
    std::stable_sort(runs.begin(), runs.end(), [&](const auto& x, const auto& y) { return rank(x) < rank(y); });
  } else if (fs::exists(dir / "last.pt")) {
    runs.push_back(load_run(dir));
  } else {
    throw Error("'" + a.dir + "' holds neither experiment.json nor last.pt",
                "pass a grid directory (was experiment) or a run directory (was train)");
  }
  if (runs.empty()) throw Error("grid '" + a.dir + "' has no evaluated cell yet", "run was experiment on it first");

  const fs::path out = a.out.empty() ? dir / "report" : fs::path(a.out);
  if (fs::exists(out) && !fs::is_directory(out))
    throw Error("--out '" + out.string() + "' exists and is not a directory");
  fs::create_directories(out);
  Plots plots(out, !a.no_plots);
  const auto groups = group_runs(runs);
  std::vector<std::string> models;
  for (const auto& g : groups)
    if (std::find(models.begin(), models.end(), g.model) == models.end()) models.push_back(g.model);

  std::ostringstream md;
  if (grid) {
    md << "# Experiment " << manifest.value("name", "") << "\n\n" << manifest.value("description", "") << "\n\n";
    md << "- budget: "
       << (manifest.value("budget", "").empty() ? "none (the full protocol)" : manifest["budget"].get<std::string>())
       << "\n- training: `" << manifest["train"].dump() << "`\n- evaluation: `" << manifest["eval"].dump() << "`\n"
       << "- cells evaluated: " << runs.size() << "\n\n";
  } else {
    md << "# Run " << runs.front().name << "\n\n- model " << runs.front().model << ", policy " << runs.front().policy
       << ", dataset " << runs.front().dataset << ", seed " << runs.front().seed << "\n\n";
  }
  md << "## Results\n\n"
     << results_tables(groups) << paper_tables(groups) << selection_tables(groups) << robustness_tables(groups);

  if (plots.enabled()) {
    md << "\n## Plots\n\n";
    for (const auto& model : models) {
      md << curves_plot(plots, model, groups) << "\n"
         << selection_plot(plots, model, groups) << "\n"
         << macs_plot(plots, model, groups) << "\n";
      for (const std::string kind : {"rotate", "translate", "crop"}) md << robustness_plot(plots, model, kind, groups);
      // Kernels of the model's sparsest DOM: the clearest picture of what a draw does.
      const RunRecord* sparsest = nullptr;
      double most = -1.0;
      for (const auto& r : runs)
        if (r.model == model && r.policy != "none")
          if (const Json* m = mode_of(r.eval, true))
            if (m->value("sparsity_transformed", 0.0) > most) {
              most = m->value("sparsity_transformed", 0.0);
              sparsest = &r;
            }
      if (sparsest) md << "\n" << kernels_plot(plots, *sparsest);
      md << "\n";
    }
  }

  md << "\n## Cost\n\n| run | training (s) | evaluation (s) | final training img/s |\n|---|---:|---:|---:|\n";
  double total = 0;
  for (const auto& r : runs) {
    const double ips = r.epochs.empty() ? 0.0 : r.epochs.back().value("images_per_s", 0.0);
    md << "| " << r.name << " | " << fixed(r.train_seconds, 0) << " | " << fixed(r.eval_seconds, 0) << " | "
       << fixed(ips, 0) << " |\n";
    total += r.train_seconds + r.eval_seconds;
  }
  md << "\nTotal: " << fixed(total / 60.0, 1) << " minutes of training and evaluation.\n";
  write_file_atomically((out / "report.md").string(), md.str(), "report");
  std::cerr << "report: " << (out / "report.md").string() << " (" << runs.size() << " runs)\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report",
                                 "write a Markdown report with tables laid out as the paper's and SVG plots (gnuplot) "
                                 "for a grid directory or a run directory");
  cmd->add_option("dir", args->dir, "grid directory (was experiment) or run directory (was train)")->required();
  cmd->add_option("--out", args->out, "report directory (default DIR/report)");
  cmd->add_flag("--no-plots", args->no_plots, "tables only");
  cmd->callback([args] { run_report(*args); });
}

}  // namespace was::cli
