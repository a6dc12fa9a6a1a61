// `was dom-search CHECKPOINT`: the options, the candidates' table and the
// Pareto plot; the search itself is the library's (was/run/dom_search.h).
#include <unistd.h>
#include <iostream>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common.h"
#include "was/core/error.h"
#include "was/report/plots.h"
#include "was/run/dom_search.h"

namespace was::cli {
namespace fs = std::filesystem;
namespace {

struct SearchArgs {
  std::string checkpoint, data_dir, plot_dir;
  DomSearchSpec spec;
  RuntimeOptions runtime;
};

void print_candidates(const DomSearchResult& r, const std::vector<const DomCandidate*>& by_macs) {
  std::printf("AOM on the validation split (%lld images): top-1 %.2f%%, %.3f M MACs\n\n",
              (long long)r.validation_images, r.aom_val_top1, double(r.aom_macs) / 1e6);
  std::printf("%-44s  %9s  %10s  %8s  %8s\n", "candidate (* Pareto, > chosen)",
              r.objective.kind == DomObjective::Kind::kRobust ? "val aug" : "val top-1", "MACs (M)", "vs AOM",
              "sparsity");
  for (const auto* c : by_macs)
    std::printf("%c%c %-41s  %8.2f%%  %10.3f  %7.1f%%  %7.1f%%\n", c->chosen ? '>' : ' ', c->pareto ? '*' : ' ',
                c->mode.key().c_str(), c->val_top1, double(c->macs) / 1e6, 100.0 * double(c->macs) / double(r.aom_macs),
                100.0 * c->sparsity);
}

void plot_candidates(const DomSearchResult& r, const std::vector<const DomCandidate*>& by_macs,
                     const std::string& dir) {
  fs::create_directories(dir);
  report::Plots plots(dir, true, [](const std::string& m) { std::cerr << "warning: " << m << "\n"; });
  std::ostringstream dat;
  for (int set = 0; set < 3; ++set) {  // all, Pareto, chosen
    for (const auto* c : by_macs)
      if (set == 0 || (set == 1 && c->pareto) || (set == 2 && c->chosen))
        dat << double(c->macs) / 1e6 << " " << c->val_top1 << "\n";
    dat << "\n\n";
  }
  std::ostringstream gp;
  gp << "set xlabel 'DOM MACs per image (millions)'\nset ylabel 'validation top-1 (%)"
     << (r.objective.kind == DomObjective::Kind::kRobust ? " under " + r.objective.augmentation.to_string() : "")
     << "'\n"
     << "plot datafile index 0 with points pt 7 ps 0.8 lc rgb '#999999' title 'candidates', "
     << "datafile index 1 with linespoints pt 7 lw 2 lc rgb '#2166ac' title 'Pareto front', "
     << "datafile index 2 with points pt 6 ps 2.5 lw 2 lc rgb '#b2182b' title 'chosen', " << r.aom_val_top1
     << " with lines dt 2 lc rgb '#000000' title 'AOM'\n";
  const auto line =
      plots.render("dom-search", "DOM candidates on the validation split: top-1 against MACs", dat.str(), gp.str());
  if (!line.empty()) std::fprintf(stderr, "plot: %s\n", (fs::path(dir) / "dom-search.svg").c_str());
}

void run_search(const SearchArgs& a) {
  a.spec.validate();  // before any file is read
  const torch::Device device = a.runtime.apply();
  auto ckpt = load_checkpoint(resolve_checkpoint(a.checkpoint), device);
  const bool tty = isatty(STDERR_FILENO) != 0;  // a progress line on a terminal only
  const auto result = search_dom(ckpt, a.spec, a.data_dir, device, [tty](size_t i, size_t n) {
    if (tty) std::fprintf(stderr, "\rscored %zu/%zu candidates%s", i, n, i == n ? "\n" : "");
  });
  std::vector<const DomCandidate*> by_macs;
  for (const auto& c : result.candidates) by_macs.push_back(&c);
  std::sort(by_macs.begin(), by_macs.end(),
            [](const DomCandidate* x, const DomCandidate* y) { return x->macs < y->macs; });
  print_candidates(result, by_macs);
  if (!a.plot_dir.empty()) plot_candidates(result, by_macs, a.plot_dir);
  for (const auto& p : result.profiles)
    std::printf("\nprofile '%s': %s, validation top-1 %.2f%%, %.3f M MACs (%.1f%% of AOM)", p.name.c_str(),
                p.mode.c_str(), p.val_top1, double(p.macs) / 1e6, 100.0 * double(p.macs) / double(result.aom_macs));
  if (!result.profiles.empty()) std::printf("\n");
  store_dom_profiles(ckpt, a.spec, result);  // throws, writing nothing, when no candidate met the limit
  std::fprintf(stderr, "stored in %s; use it with was eval --dom NAME, was export --dom NAME\n", ckpt.path.c_str());
}

}  // namespace

void add_dom_search_command(CLI::App& app) {
  auto args = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand("dom-search",
                                 "choose DOM profiles for an objective on the run's validation split and store them "
                                 "in the checkpoint");
  cmd->add_option("checkpoint", args->checkpoint, "checkpoint file or run directory (trained with --val-fraction)")
      ->required();
  cmd->add_option("--objective", args->spec.objective,
                  "macs: fewest DOM MACs within --max-drop points of AOM; accuracy: best top-1 within --max-macs; "
                  "robust:AUG: best top-1 under a test-time augmentation, e.g. robust:rotate=0:45")
      ->required();
  cmd->add_option("--candidates", args->spec.candidates, "DOM seeds tried per policy")->capture_default_str();
  cmd->add_option("--policy", args->spec.policies,
                  "also try inference policies other than the training one, e.g. crop=0.5:0.5 (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--max-drop", args->spec.max_drop, "macs: largest validation top-1 drop from AOM, in points")
      ->capture_default_str();
  cmd->add_option("--max-macs", args->spec.max_macs, "accuracy: MAC budget per image, in millions (0: none)");
  cmd->add_option("--keep", args->spec.keep, "how many of the best candidates to store")->capture_default_str();
  cmd->add_option("--name", args->spec.name, "profile name (default: the objective's; -2, -3 ... for --keep > 1)");
  cmd->add_option("--bn-batches", args->spec.bn_batches,
                  "batches to estimate each candidate's BatchNorm statistics (default: the run's)");
  cmd->add_option("--plot", args->plot_dir, "also draw the Pareto front into DIR/dom-search.svg");
  cmd->add_option("--data-dir", args->data_dir, "dataset directory (default: the dataset's standard place)");
  cmd->add_option("--batch-size", args->spec.batch_size, "evaluation batch size")->capture_default_str();
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_search(*args); });
}

}  // namespace was::cli
