#include "was/run/evaluation.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "was/core/error.h"
#include "was/core/json_file.h"
#include "was/data/loader.h"
#include "was/eval/evaluate.h"
#include "was/run/run_data.h"
#include "was/train/trainer.h"

namespace was {

std::string mode_label(const Mode& mode) {
  if (!mode.is_dom()) return "AOM";
  return "DOM:" + std::to_string(mode.dom_seed) + (mode.policy.empty() ? "" : "/" + mode.policy);
}

namespace {

nlohmann::json mode_row(Network& net, const Mode& mode, const data::BatchLoader& test, const std::string& batchnorm,
                        int64_t aom_macs) {
  const auto with_mode_bn = evaluate(net, test, mode, true);
  const auto with_training_bn = evaluate(net, test, mode, false);
  const int64_t macs = net.macs(mode).total();
  const auto sparsity = net.sparsity(mode);
  return {{"mode", mode_label(mode)},
          {"key", mode.key()},
          {"top1", with_mode_bn.top1()},
          {"top1_training_bn", with_training_bn.top1()},
          {"loss", with_mode_bn.loss},
          {"batchnorm", batchnorm},
          {"macs", macs},
          {"flops", 2 * macs},
          {"aom_macs", aom_macs},
          {"sparsity_transformed", sparsity.transformed_rate()},
          {"sparsity_conv", sparsity.conv_rate()},
          {"robustness", nlohmann::json::array()}};
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

double std_of(const std::vector<double>& v) {  // sample standard deviation
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

void EvalSpec::validate() const {
  if (mode != "aom" && mode != "dom" && mode != "both")
    throw Error("--mode must be aom, dom or both, not '" + mode + "'");
  if (batch_size < 1) throw Error("--batch-size must be at least 1");
  if (bn_batches < 0) throw Error("--bn-batches must not be negative");
  if (test_subset < 0) throw Error("--test-subset must not be negative");
  if (ensemble < 0) throw Error("--ensemble must not be negative");
  if (stochastic_dom < 0) throw Error("--stochastic-dom must not be negative");
  for (int64_t s : dom_seeds)
    if (s < 0) throw Error("DOM seeds must be non-negative integers, got " + std::to_string(s));
  if (std::set<int64_t>(dom_seeds.begin(), dom_seeds.end()).size() != dom_seeds.size())
    throw Error("a DOM seed is listed twice", "list each seed once");
}

nlohmann::json EvalSpec::to_json() const {
  nlohmann::json augs = nlohmann::json::array();
  for (const auto& a : augmentations) augs.push_back(a.to_string());
  nlohmann::json j = {{"mode", mode},
                      {"dom_seeds", dom_seeds},
                      {"ensemble", ensemble},
                      {"robustness", augs},
                      {"augment_seed", augment_seed},
                      {"batch_size", batch_size},
                      {"bn_batches", bn_batches},
                      {"test_subset", test_subset}};
  // Written only when used, so that older evaluations keep matching their spec.
  if (!dom_profiles.empty()) j["dom_profiles"] = dom_profiles;
  if (stochastic_dom > 0) j["stochastic_dom"] = stochastic_dom;
  if (paper_eval) j["paper_eval"] = true;
  return j;
}

EvalSpec EvalSpec::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("the evaluation settings must be a JSON object");
  EvalSpec s;
  for (const auto& [key, value] : j.items()) {
    const std::string where = "evaluation setting \"" + key + "\"";
    if (key == "mode")
      s.mode = json_as<std::string>(value, where);
    else if (key == "dom_seeds")
      s.dom_seeds = json_list_as<int64_t>(value, where);
    else if (key == "dom_profiles")
      s.dom_profiles = json_list_as<std::string>(value, where);
    else if (key == "ensemble")
      s.ensemble = json_as<int64_t>(value, where);
    else if (key == "robustness")
      for (const auto& a : json_list_as<std::string>(value, where))
        s.augmentations.push_back(data::TestAugmentation::parse(a));
    else if (key == "augment_seed")
      s.augment_seed = json_as<uint64_t>(value, where);
    else if (key == "batch_size")
      s.batch_size = json_as<int64_t>(value, where);
    else if (key == "bn_batches")
      s.bn_batches = json_as<int64_t>(value, where);
    else if (key == "test_subset")
      s.test_subset = json_as<int64_t>(value, where);
    else if (key == "stochastic_dom")
      s.stochastic_dom = json_as<int64_t>(value, where);
    else if (key == "paper_eval")
      s.paper_eval = json_as<bool>(value, where);
    else
      throw Error("unknown evaluation setting '" + key + "'",
                  "use mode, dom_seeds, ensemble, robustness, augment_seed, batch_size, bn_batches, test_subset, "
                  "stochastic_dom, paper_eval");
  }
  s.validate();
  return s;
}

SpeedChoice choose_evaluation_layout(Network& network, int64_t batch, torch::Device device, const EvalSpeed& speed) {
  const auto fixed = SpeedSettings::parse(speed.layout);
  if (speed.layout != "auto" && (!fixed || fixed->bf16))
    throw Error("layout '" + speed.layout + "' is not one of auto, nchw, channels-last");
  if (fixed) return {*fixed, "given", {}};
  const auto& model = network.config();
  const SpeedKey key{
      "eval", model.name + " " + network.policy().to_string(), batch, torch::get_num_threads(), device.str(), ""};
  const bool was_channels_last = network.channels_last();
  const Mode was_mode = network.mode();
  torch::Tensor x;
  const auto prepare = [&] {
    auto generator = at::detail::getDefaultCPUGenerator();
    const auto saved = generator.get_state();
    x = torch::randn({batch, model.in_channels, model.image_size, model.image_size},
                     torch::TensorOptions().device(device));
    generator.set_state(saved);
    network.set_mode(Mode::aom());  // eval mode: BatchNorm's statistics are read, never updated
  };
  const auto forward = [&](const SpeedSettings& c) {
    torch::NoGradGuard no_grad;
    network.set_channels_last(c.channels_last);
    network.forward(x);
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  const auto warn = [&](const std::string& w) {
    if (speed.on_message) speed.on_message("warning: " + w);
  };
  auto choice = choose_speed_settings_by_running(key, {SpeedSettings{false, false}, SpeedSettings{true, false}},
                                                 prepare, forward, 3, speed.cache, warn);
  network.set_channels_last(was_channels_last);
  if (x.defined()) network.set_mode(was_mode);
  return choice;
}

nlohmann::json evaluate_run(Checkpoint& ckpt, const EvalSpec& spec, const std::string& data_dir, torch::Device device,
                            const std::string& label, const EvalSpeed& speed) {
  spec.validate();
  auto& net = *ckpt.network;
  const auto& state = ckpt.state;
  const auto split = data::load_dataset(state.dataset, data_dir, dataset_options_of(state));
  if (split.test.channels() != state.model.in_channels || split.test.num_classes != state.model.num_classes)
    throw Error("checkpoint '" + ckpt.path + "' does not fit the images in the data directory");
  const auto test_set = spec.test_subset > 0 ? split.test.head(spec.test_subset) : split.test;
  data::Split selected = split;
  select_training_data(selected, state.options);
  const data::Dataset& train_set = selected.train;
  data::BatchLoader test(test_set, state.normalization, spec.batch_size, false, 0, false, device);

  const bool has_dom = net.shadow().enabled();
  if (!has_dom && spec.mode == "dom")
    throw Error("'" + ckpt.path + "' was trained without WAS (policy none): it has no DOM",
                "evaluate it with --mode aom");
  std::vector<int64_t> dom_seeds = spec.dom_seeds;
  if (dom_seeds.empty()) dom_seeds.push_back(state.dom_seed);

  std::vector<Mode> modes;
  if (spec.mode != "dom") modes.push_back(Mode::aom());
  if (spec.mode != "aom" && has_dom) {
    if (spec.dom_profiles.empty()) {
      for (int64_t s : dom_seeds) modes.push_back(Mode::dom(s));
    } else {
      for (const auto& name : spec.dom_profiles) modes.push_back(state.profile_mode(name));
    }
  }

  const int64_t aom_macs = net.macs(Mode::aom()).total();
  const auto layout = choose_evaluation_layout(net, std::min<int64_t>(spec.batch_size, test_set.size()), device, speed);
  if (speed.on_message && layout.source != "given")
    speed.on_message("speed settings: " + layout.describe() + "; --channels-last or --nchw fixes them");
  // The caller's network is handed back in the layout it came in.
  struct RestoreLayout {
    Network& net;
    bool channels_last;
    ~RestoreLayout() { net.set_channels_last(channels_last); }
  } restore{net, net.channels_last()};
  net.set_channels_last(layout.settings.channels_last);
  nlohmann::json out = {{"run", label},
                        {"checkpoint", ckpt.path},
                        {"model", state.model.name},
                        {"policy", state.policy},
                        {"dataset", state.dataset},
                        {"seed", state.seed},
                        {"test_images", test_set.size()},
                        {"spec", spec.to_json()},
                        {"speed_settings", layout.settings.label()},
                        {"modes", nlohmann::json::array()}};
  const auto ensure = [&](const Mode& mode) {
    return ensure_mode_batchnorm(ckpt, mode, train_set, spec.bn_batches, device);
  };
  for (const auto& mode : modes) out["modes"].push_back(mode_row(net, mode, test, ensure(mode), aom_macs));

  // The released code's evaluation: shuffled batches of 128, BatchNorm in training mode.
  const TrainOptions& trained = state.options;
  data::BatchLoader shuffled(test_set, state.normalization, 128, true, state.seed ^ 0x7e57b47cULL, false, device);
  if (spec.paper_eval || trained.protocol == "paper")
    for (auto& row : out["modes"])
      row["top1_paper"] = evaluate(net, shuffled, EvalWeights::of(Mode::parse(row["key"].get<std::string>())),
                                   Normalisation::kBatch, true, 0, state.seed)
                              .top1();
  if (has_dom && spec.stochastic_dom > 0)
    out["stochastic_dom"] = {
        {"running", evaluate_stochastic_dom(net, test, spec.stochastic_dom, Normalisation::kRunning).to_json()},
        {"paper",
         evaluate_stochastic_dom(net, shuffled, spec.stochastic_dom, Normalisation::kBatch, state.seed).to_json()}};
  if (!state.results.empty()) out["selection"] = state.results.to_json()["selection"];

  // Robustness: AOM and the first DOM seed, each augmented set drawn once.
  if (!spec.augmentations.empty()) {
    for (const auto& aug : spec.augmentations) {
      const auto augmented = data::augment_dataset(test_set, aug, spec.augment_seed);
      data::BatchLoader loader(augmented, state.normalization, spec.batch_size, false, 0, false, device);
      for (auto& row : out["modes"]) {
        const Mode mode = Mode::parse(row["key"].get<std::string>());
        if (mode.is_dom() &&
            !(mode == *std::find_if(modes.begin(), modes.end(), [](const Mode& m) { return m.is_dom(); })))
          continue;
        const double top1 = evaluate(net, loader, mode, true).top1();
        const auto drop = drop_rate(row["top1"].get<double>(), top1);
        row["robustness"].push_back({{"augmentation", aug.to_string()},
                                     {"kind", aug.kind_name()},
                                     {"strength", aug.strength()},
                                     {"top1", top1},
                                     {"drop_relative", drop.relative},
                                     {"drop_absolute", drop.absolute}});
      }
    }
  }

  if (has_dom && spec.mode != "aom" && spec.dom_profiles.empty() && dom_seeds.size() > 1) {
    std::vector<double> top1, macs, sparsity;
    for (const auto& row : out["modes"])
      if (row["key"].get<std::string>() != "aom") {
        top1.push_back(row["top1"].get<double>());
        macs.push_back(row["macs"].get<double>());
        sparsity.push_back(row["sparsity_transformed"].get<double>());
      }
    out["dom_profile"] = {{"seeds", dom_seeds},
                          {"top1_mean", mean_of(top1)},
                          {"top1_std", std_of(top1)},
                          {"top1_min", *std::min_element(top1.begin(), top1.end())},
                          {"top1_max", *std::max_element(top1.begin(), top1.end())},
                          {"macs_mean", mean_of(macs)},
                          {"macs_std", std_of(macs)},
                          {"sparsity_mean", mean_of(sparsity)}};
  }

  if (has_dom && spec.ensemble > 0) {
    std::vector<Mode> members;
    std::vector<int64_t> seeds;
    int64_t macs = 0;
    for (int64_t i = 0; i < spec.ensemble; ++i) {
      const Mode m = Mode::dom(dom_seeds.front() + i);
      ensure(m);
      members.push_back(m);
      seeds.push_back(m.dom_seed);
      macs += net.macs(m).total();
    }
    const auto r = evaluate_ensemble(net, test, members);
    out["ensemble"] = {{"seeds", seeds},
                       {"top1", r.top1()},
                       {"loss", r.loss},
                       {"macs", macs},
                       {"macs_vs_aom", double(macs) / double(std::max<int64_t>(aom_macs, 1))}};
  }
  net.set_mode(Mode::aom());
  return out;
}

}  // namespace was
