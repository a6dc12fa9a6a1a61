// Inference speed of AOM, DOM and compacted DOM from one set of weights,
// with BatchNorm folded into the convolutions in every export, measured in one
// run: each configuration runs in its own child process (clean peak memory),
// and the parent prints the realised speedups beside two ideals (and, on
// stderr, AOM against compact DOM alternating in one process):
//   MAC ratio   = AOM MACs / DOM MACs
//   attainable  = 1 / ((1 - f) + f * r), f = share of AOM time in the
//                 transformed convolutions (profiled), r = their DOM/AOM MAC ratio.
//
//   build/bench/was_bench_infer --models resnet18,vgg16,mobilenetv2 --policies crop=0.4:0.6,crop=0.2:0.4
//   build/bench/was_bench_infer --models resnet18 --policies crop=0.4:0.6 --profile dom-compact
#include <ATen/record_function.h>
#include <sys/resource.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "was/core/runtime.h"
#include "was/io/export.h"
#include "was/network.h"
#include "was/nn/layers.h"

namespace {

namespace fs = std::filesystem;
using was::bench::Clock;

struct Args {
  std::string models = "resnet18,vgg16,mobilenetv2";
  std::string policies = "crop=0.4:0.6,crop=0.2:0.4";
  int threads = 2;
  int large_batch = 128;
  int large_reps = 3;
  int small_reps = 50;
  int rounds = 1;
  bool child = false;
  bool channels_last = false;
  bool layout_check = false;
  std::string model, policy, variant;
  std::string profile;
};

using was::bench::command_output;
using was::bench::percentile;
using was::bench::seconds_since;
using was::bench::split;

// Time spent in convolutions with kernels larger than 1x1 (the ones WAS transforms).
thread_local double t_conv_seconds = 0;
thread_local int t_conv_depth = 0;
struct TimerContext : at::ObserverContext {
  Clock::time_point start;
  bool timed = false;
};

double transformed_conv_share(was::InferenceModel& m, const torch::Tensor& x) {
  auto handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(
                                     [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
                                       if (std::string(fn.name()) != "aten::convolution") return nullptr;
                                       auto ctx = std::make_unique<TimerContext>();
                                       const auto inputs = fn.inputs();
                                       const auto w = inputs[1].toTensor();
                                       ctx->timed = t_conv_depth++ == 0 && (w.size(2) > 1 || w.size(3) > 1);
                                       ctx->start = Clock::now();
                                       return ctx;
                                     },
                                     [](const at::RecordFunction&, at::ObserverContext* raw) {
                                       auto* ctx = static_cast<TimerContext*>(raw);
                                       if (ctx == nullptr) return;  // not a convolution
                                       --t_conv_depth;
                                       if (ctx->timed) t_conv_seconds += seconds_since(ctx->start);
                                     })
                                     .needsInputs(true));
  torch::NoGradGuard no_grad;
  m.net->forward(x);  // warm
  t_conv_seconds = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < 2; ++i) m.net->forward(x);
  const double total = seconds_since(t0);
  at::removeCallback(handle);
  return t_conv_seconds / total;
}

/// The training-time network of one configuration (same seed, so the same
/// weights for every variant), BatchNorm statistics re-estimated for its mode.
was::Network make_network(const Args& a) {
  torch::manual_seed(0);
  const bool dom = a.variant != "aom";
  was::Network net({a.model, 10, 3, 32}, was::Policy::parse(a.policy), 0);
  // Give BatchNorm non-trivial statistics, as after training.
  const auto x = torch::randn({64, 3, 32, 32});
  net.reestimate_batchnorm(dom ? was::Mode::dom(0) : was::Mode::aom(), 1, [&](int64_t) { return x; });
  return net;
}

/// One configuration exported to a temporary file (the caller removes it).
std::string export_model(const Args& a) {
  const bool dom = a.variant != "aom";
  auto net = make_network(a);
  was::RunRecord state;
  state.model = net.config();
  state.policy = net.policy().to_string();
  state.normalization = {{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  const auto path = (fs::temp_directory_path() / ("was_infer_bench_" + std::to_string(::getpid()) + ".was")).string();
  was::ExportOptions options;
  options.mode = dom ? was::Mode::dom(0) : was::Mode::aom();
  was::export_inference(path, net, state, options);
  return path;
}

/// The exported and reloaded inference model of one configuration.
was::InferenceModel build_model(const Args& a) {
  const auto path = export_model(a);
  auto model = was::load_inference(path, torch::kCPU, /*compact=*/a.variant == "dom-compact");
  fs::remove(path);
  return model;
}

/// The layout `was predict` chooses by itself (load_inference_fastest, no
/// cache: a fresh machine) against both fixed layouts, timed alternating in
/// this process after the choice: chosen_vs_best 1.0 means it chose the faster.
nlohmann::json run_layout_child(Args a) {
  was::set_threads(a.threads);
  a.variant = a.variant.substr(std::string("layout-").size());
  const bool compact = a.variant == "dom-compact";
  const auto path = export_model(a);
  nlohmann::json out;
  const auto warn = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };
  for (const int64_t batch : {int64_t(a.large_batch), int64_t(1)}) {
    const auto chosen =
        was::load_inference_fastest(path, torch::kCPU, compact, std::nullopt, batch, a.threads, nullptr, warn)
            .choice.settings;
    auto nchw = was::load_inference(path, torch::kCPU, compact);
    auto cl = was::load_inference(path, torch::kCPU, compact);
    cl.use_channels_last();
    const auto images = torch::randint(0, 256, {batch, 3, 32, 32}, torch::kUInt8);
    const int warm = batch == 1 ? 5 : 1, reps = batch == 1 ? a.small_reps : 2 * a.large_reps;
    for (int i = 0; i < warm; ++i) nchw.predict(images), cl.predict(images);
    std::vector<double> t_nchw, t_cl;
    for (int i = 0; i < reps; ++i) {
      auto t0 = Clock::now();
      nchw.predict(images);
      t_nchw.push_back(seconds_since(t0));
      t0 = Clock::now();
      cl.predict(images);
      t_cl.push_back(seconds_since(t0));
    }
    const double n = percentile(t_nchw, 0.5), c = percentile(t_cl, 0.5);
    out[batch == 1 ? "batch1" : "large"] = {{"chosen", chosen.label()},
                                            {"nchw_ms", 1e3 * n},
                                            {"channels_last_ms", 1e3 * c},
                                            {"chosen_vs_best", std::min(n, c) / (chosen.channels_last ? c : n)}};
  }
  fs::remove(path);
  return out;
}

nlohmann::json run_child(const Args& a) {
  was::set_threads(a.threads);
  const bool dom = a.variant != "aom";
  auto model = build_model(a);
  // DOM weights hold zeros: count their non-zero taps (WAS-SPEC §6).
  std::vector<torch::Tensor> sparse;
  if (dom)
    for (const auto& mod : model.net->modules(false))
      if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(mod.get())) {
        sparse.push_back(conv->weight);
        if (auto* c = dynamic_cast<was::CompactableConv2dImpl*>(conv); c && c->plan())
          for (const auto& part : c->plan()->parts) sparse.push_back(part.weight);
      }
  const auto macs =
      was::count_macs([&](torch::Tensor x) { return model.net->forward(x); }, {1, 3, 32, 32}, torch::kCPU, sparse);
  int64_t transformed_macs = 0;
  for (const auto& l : macs.layers)
    if (l.op == "conv" && l.weight_shape.size() == 4 && (l.weight_shape[2] > 1 || l.weight_shape[3] > 1))
      transformed_macs += l.dense_macs;

  torch::NoGradGuard no_grad;
  auto big = torch::randn({a.large_batch, 3, 32, 32});
  auto one = torch::randn({1, 3, 32, 32});
  if (a.channels_last) {  // NHWC activations and weights, for oneDNN's channels-last kernels
    model.use_channels_last();
    big = big.contiguous(torch::MemoryFormat::ChannelsLast);
    one = one.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  model.net->forward(big);
  std::vector<double> big_times;
  for (int i = 0; i < a.large_reps; ++i) {
    const auto t0 = Clock::now();
    model.net->forward(big);
    big_times.push_back(seconds_since(t0));
  }
  for (int i = 0; i < 5; ++i) model.net->forward(one);
  std::vector<double> lat;
  for (int i = 0; i < a.small_reps; ++i) {
    const auto t0 = Clock::now();
    model.net->forward(one);
    lat.push_back(seconds_since(t0));
  }
  double mean_lat = 0;
  for (double l : lat) mean_lat += l / lat.size();
  const double share = a.variant == "aom" ? transformed_conv_share(model, big) : 0.0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  // Compaction counts the taps it kept (non-zero weights counted dense per window).
  return {{"batch128_ips", a.large_batch / percentile(big_times, 0.5)},
          {"batch1_ips", 1.0 / mean_lat},
          {"p50_ms", 1e3 * percentile(lat, 0.5)},
          {"p90_ms", 1e3 * percentile(lat, 0.9)},
          {"p99_ms", 1e3 * percentile(lat, 0.99)},
          {"peak_rss_mib", usage.ru_maxrss / 1024.0},
          {"transformed_share", share},
          {"macs", macs.total()},
          {"transformed_dense_macs", transformed_macs},
          {"compacted_layers", model.compacted.size()}};
}

/// In one process, forwards alternating (ratios that a slow spell of the
/// machine or a different process cannot skew): AOM against compact DOM, and
/// the exported AOM against the training network in eval mode (BatchNorm not
/// folded), the export's no-regression check.
nlohmann::json run_paired_child(Args a) {
  was::set_threads(a.threads);
  a.variant = "aom";
  auto aom = build_model(a);
  auto training = make_network(a);
  training.set_mode(was::Mode::aom());
  a.variant = "dom-compact";
  auto compact = build_model(a);
  torch::NoGradGuard no_grad;
  auto big = torch::randn({a.large_batch, 3, 32, 32});
  auto one = torch::randn({1, 3, 32, 32});
  if (a.channels_last) {
    aom.use_channels_last();
    compact.use_channels_last();
    big = big.contiguous(torch::MemoryFormat::ChannelsLast);
    one = one.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  // Median time of `first` over median time of `second`, calls alternating.
  using Forward = std::function<torch::Tensor(const torch::Tensor&)>;
  const auto ratio = [&](const Forward& first, const Forward& second, const torch::Tensor& x, int warm, int reps) {
    for (int i = 0; i < warm; ++i) {
      first(x);
      second(x);
    }
    std::vector<double> t_first, t_second;
    for (int i = 0; i < reps; ++i) {
      auto t0 = Clock::now();
      first(x);
      t_first.push_back(seconds_since(t0));
      t0 = Clock::now();
      second(x);
      t_second.push_back(seconds_since(t0));
    }
    return percentile(t_first, 0.5) / percentile(t_second, 0.5);
  };
  const Forward run_aom = [&](const torch::Tensor& x) { return aom.net->forward(x); };
  const Forward run_compact = [&](const torch::Tensor& x) { return compact.net->forward(x); };
  const Forward run_training = [&](const torch::Tensor& x) { return training.forward(x); };
  // The training network runs NCHW only (its layout is the trainer's business).
  return {{"speedup_large", ratio(run_aom, run_compact, big, 1, a.large_reps)},
          {"speedup_1", ratio(run_aom, run_compact, one, 5, a.small_reps)},
          {"export_vs_training_large", a.channels_last ? 0.0 : ratio(run_training, run_aom, big, 1, a.large_reps)},
          {"export_vs_training_1", a.channels_last ? 0.0 : ratio(run_training, run_aom, one, 5, a.small_reps)}};
}

nlohmann::json spawn(const std::string& self, const Args& a, const std::string& model, const std::string& policy,
                     const std::string& variant) {
  const std::string cmd = self + " --child" + (a.channels_last ? " --channels-last" : "") + " --threads " +
                          std::to_string(a.threads) + " --large-batch " + std::to_string(a.large_batch) +
                          " --large-reps " + std::to_string(a.large_reps) + " --small-reps " +
                          std::to_string(a.small_reps) + " --model " + model + " --policy '" + policy + "' --variant " +
                          variant;
  return nlohmann::json::parse(command_output(cmd));
}

/// Field by field median of the children's numbers.
nlohmann::json median_fields(const std::vector<nlohmann::json>& runs) {
  nlohmann::json out = runs.front();
  for (auto it = out.begin(); it != out.end(); ++it) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r[it.key()].get<double>());
    it.value() = percentile(v, 0.5);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  was::tune_allocator();
  Args a;
  CLI::App app{"inference benchmark: AOM, DOM, DOM compacted (BatchNorm folded), one run"};
  app.add_option("--models", a.models)->capture_default_str();
  app.add_option("--policies", a.policies, "comma-separated crop policies (one --was each)")->capture_default_str();
  app.add_option("--threads", a.threads)->capture_default_str();
  app.add_option("--large-batch", a.large_batch)->capture_default_str();
  app.add_option("--large-reps", a.large_reps)->capture_default_str();
  app.add_option("--small-reps", a.small_reps)->capture_default_str();
  app.add_option("--rounds", a.rounds, "alternate AOM, DOM and compact this many times; medians")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_flag("--channels-last", a.channels_last, "run NHWC (channels-last) activations and weights");
  app.add_flag("--layout-check", a.layout_check,
               "instead: the layout was predict chooses by itself against both fixed layouts (AOM, compact DOM)");
  app.add_option("--profile", a.profile,
                 "aom, dom or dom-compact: print one forward of the first model and policy by operator instead")
      ->check(CLI::IsMember({"aom", "dom", "dom-compact"}));
  app.add_flag("--child", a.child)->group("");
  app.add_option("--model", a.model)->group("");
  app.add_option("--policy", a.policy)->group("");
  app.add_option("--variant", a.variant)->group("");
  CLI11_PARSE(app, argc, argv);
  if (!a.profile.empty()) {  // one configuration at the large batch, by operator
    was::set_threads(a.threads);
    a.model = split(a.models, ',').front();
    a.policy = split(a.policies, ',').front();
    a.variant = a.profile;
    auto model = build_model(a);
    auto x = torch::randn({a.large_batch, 3, 32, 32});
    if (a.channels_last) {
      model.use_channels_last();
      x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    }
    torch::NoGradGuard no_grad;
    model.net->forward(x);
    std::printf("%s, %s, %s, batch %d, %d threads: ", a.model.c_str(), a.policy.c_str(), a.variant.c_str(),
                a.large_batch, a.threads);
    was::bench::print_operator_profile([&] { model.net->forward(x); }, 3, 40, /*by_shape=*/true);
    return 0;
  }
  if (a.child) {
    std::cout << (a.variant == "paired"                ? run_paired_child(a)
                  : a.variant.rfind("layout-", 0) == 0 ? run_layout_child(a)
                                                       : run_child(a))
                     .dump()
              << std::endl;
    return 0;
  }
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) return 1;

  if (a.layout_check) {
    std::printf("| model | policy | variant | batch | chosen | nchw ms | channels-last ms | chosen vs best |\n");
    std::printf("|---|---|---|---:|---|---:|---:|---:|\n");
    for (const auto& model : split(a.models, ','))
      for (const auto& policy : split(a.policies, ','))
        for (int r = 0; r < a.rounds; ++r)
          for (const char* variant : {"aom", "dom-compact"}) {
            const auto m = spawn(self, a, model, policy, std::string("layout-") + variant);
            for (const auto& [key, batch] : {std::pair<std::string, int>{"large", a.large_batch}, {"batch1", 1}}) {
              const auto& b = m[key];
              std::printf("| %s | %s | %s | %d | %s | %.2f | %.2f | %.3f |\n", model.c_str(), policy.c_str(), variant,
                          batch, b["chosen"].get<std::string>().c_str(), b["nchw_ms"].get<double>(),
                          b["channels_last_ms"].get<double>(), b["chosen_vs_best"].get<double>());
            }
            std::fflush(stdout);
          }
    return 0;
  }
  std::printf(
      "| model | policy | variant | img/s b128 | img/s b1 | p50/p90/p99 ms b1 | peak MiB | MACs (M) | speedup b128 | "
      "speedup b1 | MAC ratio | attainable | realised/attainable b128 |\n");
  std::printf("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& model : split(a.models, ','))
    for (const auto& policy : split(a.policies, ',')) {
      // Rounds alternate the variants, so a slow spell of the machine hits all
      // of them; each number is the median over rounds.
      std::map<std::string, std::vector<nlohmann::json>> runs;
      for (int r = 0; r < a.rounds; ++r)
        for (const char* variant : {"aom", "dom", "dom-compact", "paired"})
          runs[variant].push_back(spawn(self, a, model, policy, variant));
      const auto aom = median_fields(runs["aom"]), dom = median_fields(runs["dom"]),
                 compact = median_fields(runs["dom-compact"]);
      const double f = aom["transformed_share"].get<double>();
      const double aom_macs = aom["macs"].get<double>();
      const double trans = aom["transformed_dense_macs"].get<double>();
      // r: DOM/AOM MACs of the transformed convolutions (the rest is unchanged).
      const double r = (trans - (aom_macs - dom["macs"].get<double>())) / trans;
      const double ideal_mac = aom_macs / dom["macs"].get<double>();
      const double attainable = 1.0 / ((1.0 - f) + f * r);
      for (const auto& [name, m] : {std::pair{"AOM", aom}, std::pair{"DOM", dom}, std::pair{"DOM compact", compact}}) {
        const double s128 = m["batch128_ips"].get<double>() / aom["batch128_ips"].get<double>();
        const double s1 = m["batch1_ips"].get<double>() / aom["batch1_ips"].get<double>();
        std::printf(
            "| %s | %s | %s | %.1f | %.1f | %.2f/%.2f/%.2f | %.0f | %.1f | %.2fx | %.2fx | %.2fx | %.2fx | %.2f |\n",
            model.c_str(), policy.c_str(), name, m["batch128_ips"].get<double>(), m["batch1_ips"].get<double>(),
            m["p50_ms"].get<double>(), m["p90_ms"].get<double>(), m["p99_ms"].get<double>(),
            m["peak_rss_mib"].get<double>(), m["macs"].get<double>() / 1e6, s128, s1, ideal_mac, attainable,
            s128 / attainable);
      }
      const auto paired = median_fields(runs["paired"]);
      std::fflush(stdout);
      std::fprintf(stderr,
                   "%s %s: f = %.3f, r = %.3f, %d layers compacted; in one process, alternating with AOM: "
                   "DOM compact %.2fx at batch %d (%.2f of attainable), %.2fx at batch 1; exported AOM against "
                   "the training network in eval mode %.2fx at batch %d, %.2fx at batch 1\n",
                   model.c_str(), policy.c_str(), f, r, compact["compacted_layers"].get<int>(),
                   paired["speedup_large"].get<double>(), a.large_batch,
                   paired["speedup_large"].get<double>() / attainable, paired["speedup_1"].get<double>(),
                   paired["export_vs_training_large"].get<double>(), a.large_batch,
                   paired["export_vs_training_1"].get<double>());
    }
  return 0;
}
