#include "was/run/dom_search.h"

#include <algorithm>
#include <cmath>

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/eval/evaluate.h"
#include "was/run/run_data.h"
#include "was/train/trainer.h"

namespace was {
namespace {

/// Data a choice may be made on: the run's training and validation images.
/// The test split is never loaded (training_only), so it cannot leak in.
struct SearchData {
  data::Dataset train, validation;
};

SearchData search_data(const RunRecord& state, const std::string& data_dir) {
  auto options = dataset_options_of(state);
  options.training_only = true;
  auto split = data::load_dataset(state.dataset, data_dir, options);
  select_training_data(split, state.options);
  if (split.validation.size() == 0)
    throw Error("the run has no validation split to choose a DOM on",
                "train it with --val-fraction (e.g. 0.1); the test set is never used for a choice");
  return {std::move(split.train), std::move(split.validation)};
}

std::string profile_name(const DomSearchSpec& spec, const DomObjective& o, size_t rank) {
  const std::string base = spec.name.empty() ? o.default_name() : spec.name;
  return rank == 0 ? base : base + "-" + std::to_string(rank + 1);
}

}  // namespace

DomObjective DomObjective::parse(const std::string& text) {
  DomObjective o;
  o.text = text;
  if (text == "macs")
    o.kind = Kind::kMacs;
  else if (text == "accuracy")
    o.kind = Kind::kAccuracy;
  else if (text.rfind("robust:", 0) == 0) {
    o.kind = Kind::kRobust;
    o.augmentation = data::TestAugmentation::parse(text.substr(7));
  } else {
    throw Error("unknown objective '" + text + "'",
                "use macs (with --max-drop), accuracy (with --max-macs) or robust:AUG, e.g. robust:rotate=0:45");
  }
  return o;
}

std::string DomObjective::default_name() const {
  return kind == Kind::kMacs ? "macs" : kind == Kind::kAccuracy ? "accuracy" : "robust";
}

void DomSearchSpec::validate() const {
  DomObjective::parse(objective);
  if (candidates < 1) throw Error("--candidates must be at least 1");
  if (keep < 1 || keep > candidates) throw Error("--keep must lie in 1..--candidates");
  if (!(max_drop >= 0)) throw Error("--max-drop must not be negative, got " + std::to_string(max_drop));
  if (!(max_macs >= 0)) throw Error("--max-macs must not be negative");
  if (batch_size < 1) throw Error("--batch-size must be at least 1");
  for (const auto& p : policies) Policy::parse(p);
}

DomSearchResult search_dom(Checkpoint& ckpt, const DomSearchSpec& spec, const std::string& data_dir,
                           torch::Device device, const std::function<void(size_t, size_t)>& on_scored) {
  spec.validate();
  DomSearchResult result;
  result.objective = DomObjective::parse(spec.objective);
  const DomObjective& objective = result.objective;
  std::vector<Policy> inference_policies;
  for (const auto& p : spec.policies) inference_policies.push_back(Policy::parse(p));
  const std::string& path = ckpt.path;
  auto& net = *ckpt.network;
  const auto& state = ckpt.state;
  if (!state.finished) throw Error("'" + path + "' has not finished training", "finish it with was train --resume");
  if (!net.shadow().enabled())
    throw Error("'" + path + "' was trained without WAS (policy none): it has no DOM to choose");
  const SearchData data = search_data(state, data_dir);
  result.validation_images = data.validation.size();
  data::Dataset scored = data.validation;
  if (objective.kind == DomObjective::Kind::kRobust)
    scored = data::augment_dataset(data.validation, objective.augmentation, 0);
  data::BatchLoader clean(data.validation, state.normalization, spec.batch_size, false, 0, false, device);
  data::BatchLoader loader(scored, state.normalization, spec.batch_size, false, 0, false, device);
  const int64_t bn_batches = spec.bn_batches >= 0    ? spec.bn_batches
                             : state.results.empty() ? int64_t{50}
                                                     : state.results.bn_batches;

  // AOM's validation top-1 is the reference of the macs objective.
  if (!net.batchnorm().has("aom"))
    reestimate_batchnorm_after_training(net, Mode::aom(), data.train, state.normalization, state.seed, bn_batches,
                                        device, batchnorm_augmentation_of(state));
  result.aom_val_top1 = evaluate(net, clean, Mode::aom()).top1();
  result.aom_macs = net.macs(Mode::aom()).total();
  result.batchnorm_before = net.batchnorm().keys();

  // The candidates: seeds 0..N-1 of the training policy, then of each inference policy.
  std::vector<Mode> modes;
  for (int64_t s = 0; s < spec.candidates; ++s) modes.push_back(Mode::dom(s));
  for (const auto& p : inference_policies)
    for (int64_t s = 0; s < spec.candidates; ++s) modes.push_back(Mode::dom(s, p));
  auto& cands = result.candidates;
  for (size_t i = 0; i < modes.size(); ++i) {
    DomCandidate c;
    c.mode = modes[i];
    if (!net.batchnorm().has(c.mode.key()))
      reestimate_batchnorm_after_training(net, c.mode, data.train, state.normalization, state.seed, bn_batches, device,
                                          batchnorm_augmentation_of(state));
    c.val_top1 = evaluate(net, loader, c.mode).top1();
    c.macs = net.macs(c.mode).total();
    c.sparsity = net.sparsity(c.mode).transformed_rate();
    cands.push_back(c);
    if (on_scored) on_scored(i + 1, modes.size());
  }
  for (auto& c : cands)
    c.pareto = std::none_of(cands.begin(), cands.end(), [&](const DomCandidate& o) {
      return o.val_top1 >= c.val_top1 && o.macs <= c.macs && (o.val_top1 > c.val_top1 || o.macs < c.macs);
    });

  // The choice.
  std::vector<size_t> eligible;
  for (size_t i = 0; i < cands.size(); ++i) {
    const auto& c = cands[i];
    if (objective.kind == DomObjective::Kind::kMacs && c.val_top1 < result.aom_val_top1 - spec.max_drop) continue;
    if (objective.kind == DomObjective::Kind::kAccuracy && spec.max_macs > 0 && double(c.macs) > spec.max_macs * 1e6)
      continue;
    eligible.push_back(i);
  }
  std::stable_sort(eligible.begin(), eligible.end(), [&](size_t xi, size_t yi) {
    const auto &x = cands[xi], &y = cands[yi];
    if (objective.kind == DomObjective::Kind::kMacs)
      return x.macs != y.macs ? x.macs < y.macs : x.val_top1 > y.val_top1;
    return x.val_top1 != y.val_top1 ? x.val_top1 > y.val_top1 : x.macs < y.macs;
  });
  for (size_t i = 0; i < size_t(spec.keep) && i < eligible.size(); ++i) {
    auto& c = cands[eligible[i]];
    c.chosen = true;
    result.chosen.push_back(eligible[i]);
    result.profiles.push_back(DomProfile{profile_name(spec, objective, i), c.mode.key(), spec.objective, c.val_top1,
                                         result.aom_val_top1, c.macs, result.aom_macs, c.sparsity});
  }
  return result;
}

void store_dom_profiles(Checkpoint& ckpt, const DomSearchSpec& spec, const DomSearchResult& result) {
  if (result.chosen.empty())  // nothing is written: the checkpoint stays as it was
    throw Error(result.objective.kind == DomObjective::Kind::kMacs
                    ? "no candidate stays within " + std::to_string(spec.max_drop) + " points of AOM's validation top-1"
                    : "no candidate fits within " + std::to_string(spec.max_macs) + " M MACs",
                "raise the limit, add candidates (--candidates, --policy), or accept a larger drop");
  auto& net = *ckpt.network;
  const auto& state = ckpt.state;
  // Keep the chosen profiles (and the statistics they need), forget the rest.
  std::vector<std::string> keep_keys = result.batchnorm_before;
  std::vector<DomProfile> profiles = result.profiles;
  for (const auto& p : profiles) keep_keys.push_back(p.mode);
  for (const auto& old : state.dom_profiles) {
    const bool replaced =
        std::any_of(profiles.begin(), profiles.end(), [&](const DomProfile& p) { return p.name == old.name; });
    if (!replaced) {
      profiles.push_back(old);
      keep_keys.push_back(old.mode);
    }
  }
  RunRecord updated = state;
  updated.dom_profiles = profiles;
  for (const auto& key : net.batchnorm().keys())
    if (std::find(keep_keys.begin(), keep_keys.end(), key) == keep_keys.end()) net.batchnorm().erase(key);

  // The optimiser state travels along, so the run can still be resumed.
  const auto& options = state.options;
  torch::optim::SGD optimizer(
      net.module().parameters(),
      torch::optim::SGDOptions(options.lr).momentum(options.momentum).weight_decay(options.weight_decay));
  if (ckpt.has_optimizer) ckpt.restore_optimizer(optimizer);
  save_checkpoint(ckpt.path, net, updated, ckpt.has_optimizer ? &optimizer : nullptr);
  ckpt.state = updated;
}

}  // namespace was
