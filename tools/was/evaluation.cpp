#include "evaluation.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "was/core/atomic_file.h"

namespace was::cli {

void print_evaluations(const nlohmann::json& runs) {
  size_t width = 3;
  for (const auto& r : runs) width = std::max(width, r["run"].get<std::string>().size());
  const int w = int(width);
  std::printf("%-*s  %-8s  %7s  %14s  %10s  %8s  %13s  %10s\n", w, "run", "mode", "top-1", "top-1 train-BN", "MACs (M)",
              "vs AOM", "sparsity WAS", "sparsity all");
  for (const auto& r : runs)
    for (const auto& m : r["modes"])
      std::printf("%-*s  %-8s  %6.2f%%  %13.2f%%  %10.3f  %7.1f%%  %12.1f%%  %9.1f%%\n", w,
                  r["run"].get<std::string>().c_str(), m["mode"].get<std::string>().c_str(), m["top1"].get<double>(),
                  m["top1_training_bn"].get<double>(), m["macs"].get<double>() / 1e6,
                  100.0 * m["macs"].get<double>() / std::max(1.0, m["aom_macs"].get<double>()),
                  100.0 * m["sparsity_transformed"].get<double>(), 100.0 * m["sparsity_conv"].get<double>());
  for (const auto& r : runs) {
    if (r.contains("dom_profile")) {
      const auto& p = r["dom_profile"];
      std::printf(
          "\n%s: DOM profile over %zu seeds: top-1 %.2f%% +- %.2f (min %.2f, max %.2f), MACs %.3f M, "
          "sparsity %.1f%%\n",
          r["run"].get<std::string>().c_str(), p["seeds"].size(), p["top1_mean"].get<double>(),
          p["top1_std"].get<double>(), p["top1_min"].get<double>(), p["top1_max"].get<double>(),
          p["macs_mean"].get<double>() / 1e6, 100.0 * p["sparsity_mean"].get<double>());
    }
    for (const auto& m : r["modes"])
      if (m.contains("top1_paper"))
        std::printf(
            "%s: %s top-1 %.2f%% evaluated as the released code does (BatchNorm in training mode, shuffled "
            "batches of 128)\n",
            r["run"].get<std::string>().c_str(), m["mode"].get<std::string>().c_str(), m["top1_paper"].get<double>());
    if (r.contains("stochastic_dom")) {
      const auto& s = r["stochastic_dom"];
      std::printf(
          "%s: stochastic DOM (a fresh draw per test batch) over %lld passes: top-1 %.2f%% +- %.2f (min "
          "%.2f, max %.2f) with running statistics; %.2f%% +- %.2f (min %.2f, max %.2f) with BatchNorm in "
          "training mode, as the paper\n",
          r["run"].get<std::string>().c_str(), (long long)s["running"]["repeats"].get<int64_t>(),
          s["running"]["mean"].get<double>(), s["running"]["sd"].get<double>(), s["running"]["min"].get<double>(),
          s["running"]["max"].get<double>(), s["paper"]["mean"].get<double>(), s["paper"]["sd"].get<double>(),
          s["paper"]["min"].get<double>(), s["paper"]["max"].get<double>());
    }
    if (r.contains("ensemble")) {
      const auto& e = r["ensemble"];
      std::printf("\n%s: DOM ensemble of %zu draws: top-1 %.2f%%, cost %.3f M MACs (%.2fx AOM)\n",
                  r["run"].get<std::string>().c_str(), e["seeds"].size(), e["top1"].get<double>(),
                  e["macs"].get<double>() / 1e6, e["macs_vs_aom"].get<double>());
    }
  }
  bool any = false;
  for (const auto& r : runs)
    for (const auto& m : r["modes"]) any = any || !m["robustness"].empty();
  if (!any) return;
  std::printf("\n%-*s  %-8s  %-20s  %7s  %9s  %14s\n", w, "run", "mode", "augmentation", "clean", "augmented",
              "drop rel (abs)");
  for (const auto& r : runs)
    for (const auto& m : r["modes"])
      for (const auto& a : m["robustness"])
        std::printf("%-*s  %-8s  %-20s  %6.2f%%  %8.2f%%  %6.2f%% (%5.2f)\n", w, r["run"].get<std::string>().c_str(),
                    m["mode"].get<std::string>().c_str(), a["augmentation"].get<std::string>().c_str(),
                    m["top1"].get<double>(), a["top1"].get<double>(), a["drop_relative"].get<double>(),
                    a["drop_absolute"].get<double>());
}

void write_evaluations_csv(const nlohmann::json& runs, const std::string& path) {
  std::ostringstream csv;
  csv << "run,model,policy,mode,augmentation,top1,clean_top1,drop_relative,drop_absolute,macs,sparsity_transformed\n";
  const auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  for (const auto& r : runs)
    for (const auto& m : r["modes"]) {
      const auto prefix = quoted(r["run"].get<std::string>()) + "," + r["model"].get<std::string>() + "," +
                          quoted(r["policy"].get<std::string>()) + "," + m["mode"].get<std::string>() + ",";
      const auto tail = "," + std::to_string(m["macs"].get<int64_t>()) + "," +
                        std::to_string(m["sparsity_transformed"].get<double>()) + "\n";
      csv << prefix << "none," << m["top1"].get<double>() << "," << m["top1"].get<double>() << ",0,0" << tail;
      for (const auto& a : m["robustness"])
        csv << prefix << a["augmentation"].get<std::string>() << "," << a["top1"].get<double>() << ","
            << m["top1"].get<double>() << "," << a["drop_relative"].get<double>() << ","
            << a["drop_absolute"].get<double>() << tail;
    }
  write_file_atomically(path, csv.str(), "CSV file");
}

}  // namespace was::cli
