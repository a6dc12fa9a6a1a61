#include "was/run/self_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "was/core/error.h"
#include "was/core/rng.h"
#include "was/models/classifier.h"
#include "was/run/run_data.h"
#include "was/train/trainer.h"
#include "was/transforms.h"

namespace was {
namespace {

/// The report, line by line, told to the caller as each is decided.
struct Verdict {
  CheckReport report;
  const std::function<void(const CheckLine&)>& on_line;
  void add(CheckLine::Outcome outcome, const std::string& what) {
    report.lines.push_back({outcome, what});
    (outcome == CheckLine::Outcome::kPass   ? report.passed
     : outcome == CheckLine::Outcome::kFail ? report.failed
                                            : report.skipped)++;
    if (on_line) on_line(report.lines.back());
  }
  void pass(const std::string& what) { add(CheckLine::Outcome::kPass, what); }
  void fail(const std::string& what) { add(CheckLine::Outcome::kFail, what); }
  void skip(const std::string& what) { add(CheckLine::Outcome::kSkip, what); }
  void expect(bool ok, const std::string& what) { ok ? pass(what) : fail(what); }
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// max |a - b| / max(1, max |b|): outputs are compared relative to their scale.
double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

double statistics_difference(const std::vector<std::vector<torch::Tensor>>& a,
                             const std::vector<std::vector<torch::Tensor>>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t layer = 0; layer < a.size(); ++layer)
    for (size_t i = 0; i < 2 && i < a[layer].size(); ++i)  // running mean and variance
      worst = std::max(worst, relative_difference(a[layer][i].to(torch::kDouble), b[layer][i].to(torch::kDouble)));
  return worst;
}

/// The model built from scratch without WAS, holding W, with `mode`'s
/// statistics and, for DOM, shadow weights drawn independently of the
/// network's own controller.
torch::Tensor reference_forward(Network& net, const Mode& mode, const torch::Tensor& input, torch::Device device) {
  auto plain = models::create_model(net.config());
  plain->to(device);
  torch::NoGradGuard no_grad;
  auto params = plain->named_parameters();
  const auto stored = net.module().named_parameters();
  for (const auto& item : stored)
    if (params.contains(item.key())) params[item.key()].copy_(item.value());  // not the paper family's gains
  // The live statistics (an unfinished run's, from training), unless the mode has its own below.
  auto buffers = plain->named_buffers();
  for (const auto& item : net.module().named_buffers())
    if (buffers.contains(item.key())) buffers[item.key()].copy_(item.value());
  if (mode.is_dom()) {
    const Policy override_policy = mode.policy.empty() ? Policy{} : Policy::parse(mode.policy);
    for (const auto& layer : net.shadow().layers()) {
      const Policy& policy = mode.policy.empty() ? layer.policy() : override_policy;
      const auto& w = layer.plain_weight();
      CounterStream stream(static_cast<uint64_t>(mode.dom_seed), StreamDomain::kDomDraw,
                           static_cast<uint64_t>(layer.index()), 0);
      const int64_t draws = policy.granularity == Granularity::kFilter ? w.size(0) : 1;
      std::vector<TransformParams> theta;
      for (int64_t i = 0; i < draws; ++i) theta.push_back(draw_params(policy, w.size(2), w.size(3), stream));
      auto shadow = draws == 1 ? apply_transform(w, theta.front()) : apply_transform(w, theta);
      // The paper family's DOM computes with g * T(W), g as stored.
      if (const auto* gain = stored.find(layer.name() + "." + kShadowGainName)) shadow = *gain * shadow;
      params[layer.name() + ".weight"].copy_(shadow);
    }
  }
  if (net.batchnorm().has(mode.key())) {
    BatchNormBank bank(*plain);
    bank.store("reference");
    bank.mutable_entry("reference") = net.batchnorm().entry(mode.key());
    bank.restore("reference");
  }
  plain->eval();
  return plain->forward(input);
}

}  // namespace

CheckReport check_checkpoint(Checkpoint& ckpt, const std::string& data_dir, double tolerance, torch::Device device,
                             const std::function<void(const CheckLine&)>& on_line) {
  if (!(tolerance > 0)) throw Error("--tolerance must be positive");
  auto& net = *ckpt.network;
  const auto& state = ckpt.state;
  Verdict v{CheckReport{}, on_line};
  // Each mode with what the checkpoint claims about it: the run's results, or a stored profile.
  // What the checkpoint claims about a mode's cost (nullopt: an unfinished run claims nothing).
  using Claim = std::optional<std::pair<int64_t, double>>;  // MACs, transformed sparsity
  const auto claim_of = [](const ModeResult* r) -> Claim {
    if (r == nullptr) return std::nullopt;
    return std::make_pair(r->macs, r->sparsity_transformed);
  };
  std::vector<std::pair<Mode, Claim>> modes = {{Mode::aom(), claim_of(state.results.mode("aom"))}};
  if (net.shadow().enabled()) modes.emplace_back(Mode::dom(state.dom_seed), claim_of(state.results.mode("dom")));
  for (const auto& profile : state.dom_profiles)
    modes.emplace_back(state.profile_mode(profile.name), std::make_pair(profile.macs, profile.sparsity_transformed));
  const auto& cfg = state.model;
  torch::manual_seed(0x636865636b);  // a fixed probe batch
  const auto probe = torch::randn({4, cfg.in_channels, cfg.image_size, cfg.image_size}).to(device);
  const bool has_bn = net.batchnorm().num_layers() > 0;
  const bool reestimated = state.results.bn_batches > 0;
  // load_checkpoint refuses a file whose zip CRC-32s do not match.
  v.pass("file intact: every entry of '" + ckpt.path + "' matches its CRC-32 (verified on load)");
  v.report.finished = state.finished;
  if (!state.finished)
    v.skip("unfinished run (epoch " + std::to_string(state.epoch) + " of " + std::to_string(state.options.epochs) +
           "): no final results or per-mode BatchNorm statistics stored yet; the forwards are checked with the "
           "training-time statistics");

  for (const auto& [mode, stored] : modes) {
    const std::string name = !mode.is_dom()                      ? "AOM"
                             : mode == Mode::dom(state.dom_seed) ? "DOM (seed " + std::to_string(mode.dom_seed) + ")"
                                                                 : "DOM profile " + mode.key();
    // Its own statistics, switched in with the mode.
    if (has_bn && reestimated) {
      if (!net.batchnorm().has(mode.key())) {
        v.fail(name + " has no BatchNorm statistics of its own");
      } else {
        net.set_mode(mode);
        net.batchnorm().store("check:live");
        const double d = statistics_difference(net.batchnorm().entry("check:live"), net.batchnorm().entry(mode.key()));
        v.expect(d == 0.0, name + " switches in its own BatchNorm statistics");
      }
    }
    // The forward pass.
    torch::Tensor out;
    {
      torch::NoGradGuard no_grad;
      net.set_mode(mode);
      out = net.forward(probe);
    }
    const double d = relative_difference(out, reference_forward(net, mode, probe, device));
    v.expect(d <= tolerance, name +
                                 (mode.is_dom() ? " equals a forward with the shadow weights of its seed"
                                                : " equals a plain forward with W") +
                                 " (max relative difference " + number(d) + ")");
    // MACs and sparsity against the stored results.
    if (!stored) continue;  // an unfinished run claims no MACs or sparsity yet (said above)
    const auto [stored_macs, stored_sparsity] = *stored;
    const int64_t macs = net.macs(mode).total();
    v.expect(macs == stored_macs,
             name + " MACs recomputed " + std::to_string(macs) + ", stored " + std::to_string(stored_macs));
    const double sparsity = net.sparsity(mode).transformed_rate();
    v.expect(std::abs(sparsity - stored_sparsity) < 1e-9,
             name + " sparsity recomputed " + number(sparsity) + ", stored " + nlohmann::json(stored_sparsity).dump());
  }

  // The stored statistics are those the weights give on the training data.
  if (has_bn && reestimated) {
    data::Dataset train;
    std::string why_not;
    try {
      train = training_images_of(state, data_dir);
    } catch (const Error& e) {
      why_not = e.what();
    }
    for (const auto& [mode, stored] : modes) {
      const std::string name = !mode.is_dom()                      ? "AOM"
                               : mode == Mode::dom(state.dom_seed) ? "DOM"
                                                                   : "DOM profile " + mode.key();
      if (!net.batchnorm().has(mode.key())) continue;
      if (!why_not.empty()) {
        v.skip(name + " BatchNorm statistics not recomputed: " + why_not + " (pass --data-dir)");
        continue;
      }
      std::vector<std::vector<torch::Tensor>> kept;
      for (const auto& layer : net.batchnorm().entry(mode.key())) {
        kept.emplace_back();
        for (const auto& t : layer) kept.back().push_back(t.clone());
      }
      reestimate_batchnorm_after_training(net, mode, train, state.normalization, state.seed, state.results.bn_batches,
                                          device, batchnorm_augmentation_of(state));
      const double d = statistics_difference(net.batchnorm().entry(mode.key()), kept);
      v.expect(d <= tolerance, name +
                                   " BatchNorm statistics match a re-estimation from the training data (max "
                                   "relative difference " +
                                   number(d) + ")");
    }
  }
  return v.report;
}

std::string CheckReport::verdict() const {
  if (failed > 0) return "inconsistent (" + std::to_string(failed) + " failed)";
  const std::string checked = std::to_string(passed) + " check" + (passed == 1 ? "" : "s");
  if (!finished) return "consistent so far: an unfinished run, " + checked + " passed (see SKIP lines)";
  if (skipped > 0)
    return "consistent in the " + checked + " made; " + std::to_string(skipped) + " could not be made (see SKIP lines)";
  return "consistent";
}

}  // namespace was
