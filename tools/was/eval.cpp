// `was eval`: top-1, MACs and sparsity of AOM and DOM side by side; DOM
// profiles and ensembles; top-1 drops under test-time augmentations.
#include <algorithm>
#include <iostream>

#include "common.h"
#include "evaluation.h"
#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/speed_cache.h"

namespace was::cli {
namespace {

struct EvalArgs {
  std::vector<std::string> checkpoints;
  EvalSpec spec;
  int64_t dom_seed = -1;
  std::vector<std::string> rotate, translate, crop, sweeps;
  std::string data_dir, json_out, csv_out;
  bool channels_last = false, nchw = false;
  RuntimeOptions runtime;
};

void run_eval(EvalArgs& a) {
  // Everything is validated before the first checkpoint is read.
  auto& spec = a.spec;
  if (a.dom_seed >= 0) {
    if (!spec.dom_seeds.empty())
      throw Error("--dom-seed and --dom-seeds cannot be combined", "list every seed in --dom-seeds");
    spec.dom_seeds = {a.dom_seed};
  }
  if (!spec.dom_profiles.empty() && !spec.dom_seeds.empty())
    throw Error("--dom cannot be combined with --dom-seed or --dom-seeds", "a profile fixes its own draw");
  for (const auto& r : a.rotate) spec.augmentations.push_back(data::TestAugmentation::parse("rotate", r));
  for (const auto& t : a.translate) spec.augmentations.push_back(data::TestAugmentation::parse("translate", t));
  for (const auto& c : a.crop) spec.augmentations.push_back(data::TestAugmentation::parse("crop", c));
  using K = data::TestAugmentation::Kind;
  for (const auto& s : a.sweeps)
    for (K kind : {K::kRotate, K::kTranslate, K::kCrop}) {
      data::TestAugmentation probe;
      probe.kind = kind;
      if (s == "all" || s == probe.kind_name())
        for (const auto& aug : data::paper_sweep(kind)) spec.augmentations.push_back(aug);
    }
  // A sweep and a listed point may name the same augmentation: evaluate it once.
  std::vector<data::TestAugmentation> unique;
  for (const auto& aug : spec.augmentations)
    if (std::none_of(unique.begin(), unique.end(), [&](const auto& u) { return u.to_string() == aug.to_string(); }))
      unique.push_back(aug);
  spec.augmentations = unique;
  spec.validate();
  const torch::Device device = a.runtime.apply();

  const SpeedCache cache;
  EvalSpeed speed;
  speed.layout = a.channels_last ? "channels-last" : a.nchw ? "nchw" : "auto";
  speed.cache = &cache;
  speed.on_message = [](const std::string& line) { std::cerr << line << std::endl; };
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& c : a.checkpoints) {
    auto ckpt = load_checkpoint(resolve_checkpoint(c), device);
    runs.push_back(evaluate_run(ckpt, spec, a.data_dir, device, c, speed));
  }
  print_evaluations(runs);
  if (!a.json_out.empty()) write_file_atomically(a.json_out, runs.dump(2) + "\n", "JSON file");
  if (!a.csv_out.empty()) write_evaluations_csv(runs, a.csv_out);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "evaluate checkpoints in AOM and DOM: top-1, MACs, sparsity, DOM profiles and ensembles, robustness");
  cmd->add_option("checkpoints", args->checkpoints, "checkpoint files or run directories")->required();
  cmd->add_option("--mode", args->spec.mode, "aom, dom or both")
      ->check(CLI::IsMember({"aom", "dom", "both"}))
      ->capture_default_str();
  cmd->add_option("--dom-seed", args->dom_seed, "DOM seed (default: the one stored with the run)");
  cmd->add_option("--dom-seeds", args->spec.dom_seeds,
                  "several DOM seeds, e.g. 0,1,2,3,4: a DOM profile (mean and spread of top-1, MACs, sparsity)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--dom", args->spec.dom_profiles, "DOM profiles stored by was dom-search, by name (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--ensemble", args->spec.ensemble,
                  "also evaluate a DOM ensemble averaging the softmax of N draws (seeds d, d+1, ...); its MACs are "
                  "the sum of the members'")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--stochastic-dom", args->spec.stochastic_dom,
                  "also the paper's DOM: a fresh draw for every test batch, N passes (mean, sd, min, max), with "
                  "running statistics and with BatchNorm in training mode")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--paper-eval", args->spec.paper_eval,
                "also evaluate every mode as the released code does: BatchNorm in training mode on shuffled batches "
                "of 128 (always on for --protocol paper runs)");
  cmd->add_option("--rotate", args->rotate, "test-time rotation amin:amax degrees (repeatable: a sweep)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--translate", args->translate, "test-time translation fx:fy, fractions of the image (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--crop", args->crop, "test-time crop of area smin:smax, resized back (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--sweep", args->sweeps, "the paper's sweeps (Tables 3-5): rotate, translate, crop or all")
      ->check(CLI::IsMember({"rotate", "translate", "crop", "all"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--augment-seed", args->spec.augment_seed, "seed of the test-time augmentation draws")
      ->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir, "dataset directory (default: the dataset's standard place)");
  cmd->add_option("--batch-size", args->spec.batch_size, "evaluation batch size")->capture_default_str();
  cmd->add_option("--bn-batches", args->spec.bn_batches,
                  "training batches to estimate BatchNorm statistics for a DOM seed that has none stored")
      ->capture_default_str();
  cmd->add_option("--test-subset", args->spec.test_subset, "evaluate on the first N test images only (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", args->json_out, "also write the results as JSON to this file");
  cmd->add_option("--csv", args->csv_out, "also write one CSV row per run, mode and augmentation to this file");
  auto* cl = cmd->add_flag("--channels-last", args->channels_last,
                           "speed: NHWC activations (oneDNN's channels-last kernels); without it or --nchw, the "
                           "faster of the two as measured here (cached in ~/.cache/was/settings.json)");
  cmd->add_flag("--nchw", args->nchw, "speed: NCHW activations, without measuring")->excludes(cl);
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace was::cli
