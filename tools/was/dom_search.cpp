// `was dom-search CHECKPOINT`: the DOM chosen for an objective (WAS-SPEC §1,
// §5: SW "determined by the specific objective"). Candidate DOM draws are
// scored on the run's validation split only; the best become named DOM
// profiles stored in the checkpoint, each with its own BatchNorm statistics.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common.h"
#include "plots.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/data/test_augment.h"
#include "was/error.h"
#include "was/eval/evaluate.h"
#include "was/train/trainer.h"

namespace was::cli {
namespace fs = std::filesystem;
namespace {

struct SearchArgs {
  std::string checkpoint, objective, name, data_dir, plot_dir;
  std::vector<std::string> policies;
  int64_t candidates = 16, keep = 1, bn_batches = -1, batch_size = 256;
  double max_drop = 1.0, max_macs = 0.0;
  RuntimeOptions runtime;
};

/// What to optimise, parsed and checked before any data is read.
struct Objective {
  enum class Kind { kMacs, kAccuracy, kRobust } kind = Kind::kMacs;
  data::TestAugmentation augmentation;  // kRobust

  static Objective parse(const std::string& text) {
    Objective o;
    if (text == "macs") o.kind = Kind::kMacs;
    else if (text == "accuracy") o.kind = Kind::kAccuracy;
    else if (text.rfind("robust:", 0) == 0) {
      o.kind = Kind::kRobust;
      o.augmentation = data::TestAugmentation::parse(text.substr(7));
    } else {
      throw Error("unknown objective '" + text + "'",
                  "use macs (with --max-drop), accuracy (with --max-macs) or robust:AUG, e.g. robust:rotate=0:45");
    }
    return o;
  }
};

struct Candidate {
  Mode mode;
  double val_top1 = 0.0;  ///< clean, or under the objective's augmentation
  int64_t macs = 0;
  double sparsity = 0.0;
  bool pareto = false, chosen = false;
};

/// Data a choice may be made on: the run's training and validation images.
/// The test split is never loaded (training_only), so it cannot leak in.
struct SearchData {
  data::Dataset train, validation;
};

SearchData search_data(const RunState& state, const std::string& data_dir) {
  auto options = dataset_options_of(state);
  options.training_only = true;
  auto split = data::load_dataset(state.dataset, data_dir, options);
  select_training_data(split, TrainOptions::from_json(state.train_options));
  if (split.validation.size() == 0)
    throw Error("the run has no validation split to choose a DOM on",
                "train it with --val-fraction (e.g. 0.1); the test set is never used for a choice");
  return {std::move(split.train), std::move(split.validation)};
}

std::string profile_name(const SearchArgs& a, const Objective& o, int64_t rank) {
  std::string base = a.name;
  if (base.empty()) base = o.kind == Objective::Kind::kMacs ? "macs" : o.kind == Objective::Kind::kAccuracy ? "accuracy" : "robust";
  return rank == 0 ? base : base + "-" + std::to_string(rank + 1);
}

void run_search(const SearchArgs& a) {
  const Objective objective = Objective::parse(a.objective);
  if (a.candidates < 1) throw Error("--candidates must be at least 1");
  if (a.keep < 1 || a.keep > a.candidates) throw Error("--keep must lie in 1..--candidates");
  if (a.max_drop < 0) throw Error("--max-drop must not be negative, got " + std::to_string(a.max_drop));
  if (a.max_macs < 0) throw Error("--max-macs must not be negative");
  std::vector<Policy> inference_policies;
  for (const auto& p : a.policies) inference_policies.push_back(Policy::parse(p));
  const torch::Device device = a.runtime.apply();

  const std::string path = resolve_checkpoint(a.checkpoint);
  auto ckpt = load_checkpoint(path, device);
  auto& net = *ckpt.network;
  const auto& state = ckpt.state;
  if (!state.finished) throw Error("'" + path + "' has not finished training", "finish it with was train --resume");
  if (!net.shadow().enabled())
    throw Error("'" + path + "' was trained without WAS (policy none): it has no DOM to choose");
  const SearchData data = search_data(state, a.data_dir);
  data::Dataset scored = data.validation;
  if (objective.kind == Objective::Kind::kRobust) scored = data::augment_dataset(data.validation, objective.augmentation, 0);
  data::BatchLoader clean(data.validation, state.normalization, a.batch_size, false, 0, false, device);
  data::BatchLoader loader(scored, state.normalization, a.batch_size, false, 0, false, device);
  const int64_t bn_batches = a.bn_batches >= 0 ? a.bn_batches : state.results.value("bn_batches", int64_t{50});

  // AOM's validation top-1 is the reference of the macs objective.
  const bool had_aom_bn = net.batchnorm().has("aom");
  if (!had_aom_bn)
    reestimate_batchnorm_after_training(net, Mode::aom(), data.train, state.normalization, state.seed, bn_batches, device);
  const double aom_val = evaluate(net, clean, Mode::aom()).top1();
  const int64_t aom_macs = net.macs(Mode::aom()).total();

  // The candidates: seeds 0..N-1 of the training policy, then of each inference policy.
  std::vector<Mode> modes;
  for (int64_t s = 0; s < a.candidates; ++s) modes.push_back(Mode::dom(s));
  for (const auto& p : inference_policies)
    for (int64_t s = 0; s < a.candidates; ++s) modes.push_back(Mode::dom(s, p));
  const auto keys_before = net.batchnorm().keys();
  std::vector<Candidate> cands;
  const bool tty = isatty(STDERR_FILENO) != 0;  // a progress line on a terminal only
  for (size_t i = 0; i < modes.size(); ++i) {
    Candidate c;
    c.mode = modes[i];
    if (!net.batchnorm().has(c.mode.key()))
      reestimate_batchnorm_after_training(net, c.mode, data.train, state.normalization, state.seed, bn_batches, device);
    c.val_top1 = evaluate(net, loader, c.mode).top1();
    c.macs = net.macs(c.mode).total();
    c.sparsity = net.sparsity(c.mode).transformed_rate();
    cands.push_back(c);
    if (tty) std::fprintf(stderr, "\rscored %zu/%zu candidates", i + 1, modes.size());
  }
  if (tty) std::fprintf(stderr, "\n");
  for (auto& c : cands)
    c.pareto = std::none_of(cands.begin(), cands.end(), [&](const Candidate& o) {
      return o.val_top1 >= c.val_top1 && o.macs <= c.macs && (o.val_top1 > c.val_top1 || o.macs < c.macs);
    });

  // The choice.
  std::vector<Candidate*> eligible;
  for (auto& c : cands) {
    if (objective.kind == Objective::Kind::kMacs && c.val_top1 < aom_val - a.max_drop) continue;
    if (objective.kind == Objective::Kind::kAccuracy && a.max_macs > 0 && double(c.macs) > a.max_macs * 1e6) continue;
    eligible.push_back(&c);
  }
  std::stable_sort(eligible.begin(), eligible.end(), [&](const Candidate* x, const Candidate* y) {
    if (objective.kind == Objective::Kind::kMacs)
      return x->macs != y->macs ? x->macs < y->macs : x->val_top1 > y->val_top1;
    return x->val_top1 != y->val_top1 ? x->val_top1 > y->val_top1 : x->macs < y->macs;
  });
  for (int64_t i = 0; i < a.keep && i < int64_t(eligible.size()); ++i) eligible[size_t(i)]->chosen = true;

  std::printf("AOM on the validation split (%lld images): top-1 %.2f%%, %.3f M MACs\n\n",
              (long long)data.validation.size(), aom_val, double(aom_macs) / 1e6);
  std::printf("%-44s  %9s  %10s  %8s  %8s\n", "candidate (* Pareto, > chosen)",
              objective.kind == Objective::Kind::kRobust ? "val aug" : "val top-1", "MACs (M)", "vs AOM", "sparsity");
  std::vector<const Candidate*> order;
  for (const auto& c : cands) order.push_back(&c);
  std::sort(order.begin(), order.end(), [](const Candidate* x, const Candidate* y) { return x->macs < y->macs; });
  for (const auto* c : order)
    std::printf("%c%c %-41s  %8.2f%%  %10.3f  %7.1f%%  %7.1f%%\n", c->chosen ? '>' : ' ', c->pareto ? '*' : ' ',
                c->mode.key().c_str(), c->val_top1, double(c->macs) / 1e6, 100.0 * double(c->macs) / double(aom_macs),
                100.0 * c->sparsity);

  if (!a.plot_dir.empty()) {
    fs::create_directories(a.plot_dir);
    Plots plots(a.plot_dir, true);
    std::ostringstream dat;
    for (int set = 0; set < 3; ++set) {  // all, Pareto, chosen
      for (const auto* c : order)
        if (set == 0 || (set == 1 && c->pareto) || (set == 2 && c->chosen))
          dat << double(c->macs) / 1e6 << " " << c->val_top1 << "\n";
      dat << "\n\n";
    }
    std::ostringstream gp;
    gp << "set xlabel 'DOM MACs per image (millions)'\nset ylabel 'validation top-1 (%)"
       << (objective.kind == Objective::Kind::kRobust ? " under " + objective.augmentation.to_string() : "") << "'\n"
       << "plot datafile index 0 with points pt 7 ps 0.8 lc rgb '#999999' title 'candidates', "
       << "datafile index 1 with linespoints pt 7 lw 2 lc rgb '#2166ac' title 'Pareto front', "
       << "datafile index 2 with points pt 6 ps 2.5 lw 2 lc rgb '#b2182b' title 'chosen', " << aom_val
       << " with lines dt 2 lc rgb '#000000' title 'AOM'\n";
    const auto line = plots.render("dom-search", "DOM candidates on the validation split: top-1 against MACs",
                                   dat.str(), gp.str());
    if (!line.empty()) std::fprintf(stderr, "plot: %s\n", (fs::path(a.plot_dir) / "dom-search.svg").c_str());
  }

  if (eligible.empty()) {
    // Nothing is written: the checkpoint stays as it was.
    throw Error(objective.kind == Objective::Kind::kMacs
                    ? "no candidate stays within " + std::to_string(a.max_drop) + " points of AOM's validation top-1"
                    : "no candidate fits within " + std::to_string(a.max_macs) + " M MACs",
                "raise the limit, add candidates (--candidates, --policy), or accept a larger drop");
  }

  // Keep the chosen profiles (and the statistics they need), forget the rest.
  RunState updated = state;
  nlohmann::json profiles = nlohmann::json::array();
  std::vector<std::string> keep_keys = keys_before;
  for (int64_t i = 0; i < a.keep && i < int64_t(eligible.size()); ++i) {
    const auto* c = eligible[size_t(i)];
    const std::string name = profile_name(a, objective, i);
    profiles.push_back({{"name", name},
                        {"mode", c->mode.key()},
                        {"objective", a.objective},
                        {"val_top1", c->val_top1},
                        {"aom_val_top1", aom_val},
                        {"macs", c->macs},
                        {"aom_macs", aom_macs},
                        {"sparsity_transformed", c->sparsity}});
    keep_keys.push_back(c->mode.key());
    std::printf("\nprofile '%s': %s, validation top-1 %.2f%%, %.3f M MACs (%.1f%% of AOM)", name.c_str(),
                c->mode.key().c_str(), c->val_top1, double(c->macs) / 1e6, 100.0 * double(c->macs) / double(aom_macs));
  }
  std::printf("\n");
  for (const auto& old : state.dom_profiles) {
    const bool replaced = std::any_of(profiles.begin(), profiles.end(), [&](const auto& p) { return p["name"] == old["name"]; });
    if (!replaced) {
      profiles.push_back(old);
      keep_keys.push_back(old["mode"].get<std::string>());
    }
  }
  updated.dom_profiles = profiles;
  for (const auto& key : net.batchnorm().keys())
    if (std::find(keep_keys.begin(), keep_keys.end(), key) == keep_keys.end()) net.batchnorm().erase(key);

  // The optimiser state travels along, so the run can still be resumed.
  const auto options = TrainOptions::from_json(state.train_options);
  torch::optim::SGD optimizer(net.module().parameters(), torch::optim::SGDOptions(options.lr)
                                                             .momentum(options.momentum)
                                                             .weight_decay(options.weight_decay));
  if (ckpt.has_optimizer) ckpt.restore_optimizer(optimizer);
  save_checkpoint(path, net, updated, ckpt.has_optimizer ? &optimizer : nullptr);
  std::fprintf(stderr, "stored in %s; use it with was eval --dom NAME, was export --dom NAME\n", path.c_str());
}

}  // namespace

void add_dom_search_command(CLI::App& app) {
  auto args = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand("dom-search",
                                 "choose DOM profiles for an objective on the run's validation split and store them "
                                 "in the checkpoint");
  cmd->add_option("checkpoint", args->checkpoint, "checkpoint file or run directory (trained with --val-fraction)")
      ->required();
  cmd->add_option("--objective", args->objective,
                  "macs: fewest DOM MACs within --max-drop points of AOM; accuracy: best top-1 within --max-macs; "
                  "robust:AUG: best top-1 under a test-time augmentation, e.g. robust:rotate=0:45")
      ->required();
  cmd->add_option("--candidates", args->candidates, "DOM seeds tried per policy")->capture_default_str();
  cmd->add_option("--policy", args->policies,
                  "also try inference policies other than the training one, e.g. crop=0.5:0.5 (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--max-drop", args->max_drop, "macs: largest validation top-1 drop from AOM, in points")
      ->capture_default_str();
  cmd->add_option("--max-macs", args->max_macs, "accuracy: MAC budget per image, in millions (0: none)");
  cmd->add_option("--keep", args->keep, "how many of the best candidates to store")->capture_default_str();
  cmd->add_option("--name", args->name, "profile name (default: the objective's; -2, -3 ... for --keep > 1)");
  cmd->add_option("--bn-batches", args->bn_batches,
                  "batches to estimate each candidate's BatchNorm statistics (default: the run's)");
  cmd->add_option("--plot", args->plot_dir, "also draw the Pareto front into DIR/dom-search.svg");
  cmd->add_option("--data-dir", args->data_dir, "dataset directory (default: the dataset's standard place)");
  cmd->add_option("--batch-size", args->batch_size, "evaluation batch size")->capture_default_str();
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_search(*args); });
}

}  // namespace was::cli
