#include <array>
#include <filesystem>
#include <map>
#include <sstream>

#include "groups.h"
#include "was/core/error.h"
#include "was/io/checkpoint.h"

namespace was::report {
namespace fs = std::filesystem;

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
        auto& s = per_epoch[e.epoch];
        s[0].v.push_back(e.train_loss);
        if (const auto aom = e.evaluation("test_top1_aom")) s[1].v.push_back(*aom);
        if (const auto dom = e.evaluation("test_top1_dom")) s[2].v.push_back(*dom);
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
        if (g.model == model && r->results.selection.count(preferred)) curve = preferred;
  std::ostringstream data;
  std::vector<std::string> labels;
  for (const auto& g : groups) {
    if (g.model != model) continue;
    std::map<int64_t, Stat> test, val;
    for (const auto* r : g.runs)
      for (const auto& e : r->epochs) {
        if (const auto t = e.evaluation("test_top1_" + curve)) test[e.epoch].v.push_back(*t);
        if (const auto v = e.evaluation("val_top1_" + curve)) val[e.epoch].v.push_back(*v);
      }
    if (test.empty()) continue;
    data << "# " << g.label << ": epoch, test, validation (means over seeds)\n";
    for (auto& [epoch, t] : test)
      data << epoch << " " << t.mean() << " " << (val.count(epoch) ? val[epoch].mean() : NAN) << "\n";
    data << "\n\n# " << g.label << ": each seed's best-test and validation-selected epochs\n";
    for (const auto* r : g.runs) {
      const auto it = r->results.selection.find(curve);
      if (it == r->results.selection.end()) continue;
      const EpochSelection& sel = it->second;
      data << sel.best_test_epoch << " " << sel.best_test_top1 << " "
           << (sel.val_selected_epoch ? std::to_string(*sel.val_selected_epoch) : "NaN") << " "
           << (sel.val_selected_top1 ? fixed(*sel.val_selected_top1, 4) : "NaN") << "\n";
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
std::string kernels_plot(Plots& plots, const ReportedRun& run) {
  if (!plots.enabled() || !fs::exists(fs::path(run.dir) / "last.pt")) return "";
  Checkpoint ckpt;
  try {
    ckpt = load_checkpoint((fs::path(run.dir) / "last.pt").string());
  } catch (const Error& e) {
    plots.warn(std::string("no kernel picture: ") + e.what());
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

}  // namespace was::report
