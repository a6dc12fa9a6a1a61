// Training speed of `was` against the Python PyTorch loop a user would write
// (bench/train_peer.py), measured in one run: the same networks, batch,
// optimiser (SGD 0.01, momentum 0.9) and threads; full training steps on data
// already in memory, median after warm-up. Every configuration runs in its own
// child process (the allocator is a process-wide setting, and each child's
// peak RSS is its own), alternated over rounds so all see the same machine:
//
//   python glibc / tuned   the peer as a user runs it (glibc's malloc, OpenBLAS's
//                          threads) or with the settings `was` applies itself
//   was glibc / tuned      `was`, plain network (WAS_GLIBC_MALLOC=1 / default)
//   was C, CT, CTR         with WAS
//   was cl, bf16, cl+bf16  with --channels-last, --bf16, both
//   was auto               as `was train` runs without speed flags: the memory
//                          format chosen by timing both at start-up
//
// Each child also measures eval-mode (AOM) inference at batch 1 and at the
// training batch. A last child times one 3x3 64-channel convolution (forward
// and backward) as the dense reference a network's training is compared with.
//
//   build/bench/was_bench_step --models resnet18,mobilenetv2,vgg16 --steps 4 --rounds 2
//   build/bench/was_bench_step --profile --models resnet18    # one step by operator
#include <ATen/record_function.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "was/core/runtime.h"
#include "was/network.h"
#include "was/run/training.h"

#ifndef WAS_SOURCE_DIR
#define WAS_SOURCE_DIR "."
#endif

namespace {

using was::bench::Clock;
using Json = nlohmann::json;

struct Args {
  std::string models = "resnet18,mobilenetv2,vgg16";
  std::string configs = "python-glibc,python,was-glibc,was,was-C,was-CT,was-CTR,was-cl,was-bf16,was-cl-bf16,was-auto";
  int64_t batch = 128;
  int steps = 4;
  int warmup = 1;
  int rounds = 2;
  int threads = 2;
  int infer_reps = 20;
  std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::string peer = std::string(WAS_SOURCE_DIR) + "/bench/train_peer.py";
  bool profile = false;
  std::string transform_policy = "CTR";  ///< the draw the transform-alone line times
  // child
  bool child = false;
  std::string model, policy = "none", child_kind = "train";
  bool channels_last = false, bf16 = false, auto_speed = false;
};

using was::bench::command_output;
using was::bench::median;
using was::bench::seconds_since;
using was::bench::split;

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// --- children ------------------------------------------------------------------

/// One full training step as the trainer runs it (layout, autocast, WAS draw).
double timed_step(was::Network& net, torch::optim::SGD& opt, const torch::Tensor& x, const torch::Tensor& y,
                  const Args& a, int64_t step) {
  const auto t0 = Clock::now();
  net.begin_training_step(step);
  torch::Tensor logits;
  {
    was::BFloat16Autocast autocast(torch::kCPU, a.bf16);
    logits = net.forward(x);
  }
  auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), y);
  opt.zero_grad();
  loss.backward();
  opt.step();
  return seconds_since(t0);
}

/// What a child trains: the network, its optimiser and one batch in memory.
struct TrainingSetup {
  explicit TrainingSetup(const Args& a)
      : layout(a.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous),
        net((torch::manual_seed(0), was::models::ModelConfig{a.model, 10, 3, 32}), was::Policy::parse(a.policy), 0),
        opt(net.module().parameters(), torch::optim::SGDOptions(0.01).momentum(0.9)),
        x(torch::randn({a.batch, 3, 32, 32}).contiguous(layout)),
        y(torch::randint(0, 10, {a.batch})) {}
  torch::MemoryFormat layout;
  was::Network net;
  torch::optim::SGD opt;
  torch::Tensor x, y;
};

Json measure_training(const Args& given) {
  was::set_threads(given.threads);
  Args a = given;
  std::string chosen;
  if (a.auto_speed) {  // what `was train` does without --channels-last or --nchw (no cache: a fresh machine)
    const auto choice = was::choose_training_speed(
        was::models::ModelConfig{a.model, 10, 3, 32}, was::Policy::parse(a.policy), 0, a.batch, torch::kCPU,
        {was::SpeedSettings{false, false}, was::SpeedSettings{true, false}}, nullptr,
        [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); });
    a.channels_last = choice.settings.channels_last;
    a.bf16 = choice.settings.bf16;
    chosen = choice.settings.label();
  }
  TrainingSetup setup(a);
  auto& net = setup.net;
  const auto layout = setup.layout;
  std::vector<double> times;
  for (int s = 0; s < a.warmup + a.steps; ++s) {
    const double dt = timed_step(net, setup.opt, setup.x, setup.y, a, s);
    if (s >= a.warmup) times.push_back(dt);
  }
  // Inference: AOM in eval mode, as `was eval` runs it.
  net.set_mode(was::Mode::aom());
  torch::NoGradGuard no_grad;
  Json out = {{"step_s", median(times)}, {"macs", net.macs(was::Mode::aom()).total()}};
  for (const auto& [batch, reps] : {std::pair<int64_t, int>{a.batch, 3}, std::pair<int64_t, int>{1, a.infer_reps}}) {
    const auto xb = torch::randn({batch, 3, 32, 32}).contiguous(layout);
    net.forward(xb);
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      const auto t0 = Clock::now();
      was::BFloat16Autocast autocast(torch::kCPU, a.bf16);
      net.forward(xb);
      t.push_back(seconds_since(t0));
    }
    out[batch == 1 ? "infer_ips_1" : "infer_ips_large"] = double(batch) / median(t);
  }
  out["peak_rss_mib"] = peak_rss_mib();
  if (!chosen.empty()) out["chosen"] = chosen;
  return out;
}

/// The dense reference: one 3x3, 64 -> 64 channel convolution on 32x32 maps,
/// forward and backward (input and weight gradients), at the training batch.
Json measure_conv(const Args& a) {
  was::set_threads(a.threads);
  auto x = torch::randn({a.batch, 64, 32, 32}, torch::requires_grad());
  auto w = torch::randn({64, 64, 3, 3}, torch::requires_grad());
  std::vector<double> times;
  for (int s = 0; s < 2 + 5; ++s) {
    const auto t0 = Clock::now();
    auto out = torch::conv2d(x, w, {}, 1, 1);
    out.backward(torch::ones_like(out));
    if (s >= 2) times.push_back(seconds_since(t0));
  }
  const double macs = double(a.batch) * 32 * 32 * 64 * 64 * 9;
  return {{"gflops", 3.0 * 2.0 * macs / median(times) / 1e9}};  // forward + two backward convolutions
}

/// The WAS transform alone, over every transformed layer of the model for one
/// step's draw, as training runs it: forward (S = A W), and forward + backward
/// (dL/dW = A^T dL/dS); the same as a plain matmul (apply_dense_plane_transform);
/// and the memory floor, one copy of every weight (a forward pass must at least
/// read W and write S).
Json measure_transform(const Args& a) {
  was::set_threads(a.threads);
  torch::manual_seed(0);
  was::Network net(was::models::ModelConfig{a.model, 10, 3, 32}, was::Policy::parse(a.policy), 0);
  struct Layer {
    torch::Tensor w, a, g;
  };
  std::vector<Layer> layers;
  int64_t weights = 0;
  for (const auto& layer : net.shadow().layers()) {
    const auto& w = layer.plain_weight();
    const auto params = layer.draw(0, was::StreamDomain::kTrainingDraw, 1);
    std::vector<torch::Tensor> mats;
    for (const auto& p : params) mats.push_back(was::transform_matrix(p, w.size(2), w.size(3)));
    layers.push_back({w.detach().clone().requires_grad_(true), mats.size() == 1 ? mats[0] : torch::stack(mats),
                      torch::randn_like(w)});
    weights += w.numel();
  }
  const auto time_ms = [&](const std::function<void(Layer&)>& pass) {
    std::vector<double> times;
    for (int s = 0; s < 2 + 7; ++s) {
      const auto t0 = Clock::now();
      for (auto& l : layers) pass(l);
      if (s >= 2) times.push_back(seconds_since(t0));
    }
    return 1e3 * median(times);
  };
  const auto both = [&](bool matmul) {
    return time_ms([matmul](Layer& l) {
      (matmul ? was::apply_dense_plane_transform(l.w, l.a) : was::apply_plane_transform(l.w, l.a)).backward(l.g);
      l.w.mutable_grad() = torch::Tensor();
    });
  };
  const double trained = both(false), matmul = both(true);
  torch::NoGradGuard no_grad;
  const double forward = time_ms([](Layer& l) { was::apply_plane_transform(l.w, l.a); });
  const double copy = time_ms([](Layer& l) { l.w.clone(); });
  return {{"layers", layers.size()},        {"weights", weights},
          {"forward_backward_ms", trained}, {"matmul_forward_backward_ms", matmul},
          {"forward_ms", forward},          {"copy_ms", copy}};
}

/// Time by operator over two steps.
void profile_steps(const Args& a) {
  was::set_threads(a.threads);
  TrainingSetup t(a);
  timed_step(t.net, t.opt, t.x, t.y, a, 0);
  std::printf("%s, policy %s, batch %lld, %d threads, one training step: ", a.model.c_str(), a.policy.c_str(),
              (long long)a.batch, a.threads);
  int64_t step = 1;
  was::bench::print_operator_profile([&] { timed_step(t.net, t.opt, t.x, t.y, a, step++); }, 2);
}

// --- parent --------------------------------------------------------------------

const char* kTunedMalloc = "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_TOP_PAD_=67108864 ";

/// Where the Python peer's stderr goes, to say why it failed.
std::string peer_errors_path() {
  return (std::filesystem::temp_directory_path() / ("was_bench_peer_" + std::to_string(getpid()) + ".err")).string();
}

std::string last_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last = "no output";
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

/// Runs one configuration ("python[-glibc]", "was[-glibc]", "was-C", "was-cl-bf16", ...) of `model`.
Json run_config(const std::string& self, const Args& a, const std::string& model, const std::string& config) {
  const std::string common = " --model " + model + " --batch " + std::to_string(a.batch) + " --steps " +
                             std::to_string(a.steps) + " --warmup " + std::to_string(a.warmup) + " --threads " +
                             std::to_string(a.threads);
  const bool glibc = config.find("-glibc") != std::string::npos;
  std::string cmd;
  if (config.rfind("python", 0) == 0) {
    // What a Python user gets out of the box (glibc's malloc, OpenBLAS's own
    // threads), or the settings `was` applies itself, set through the environment.
    cmd = std::string(glibc ? "" : std::string(kTunedMalloc) + "OPENBLAS_NUM_THREADS=1 ") + a.python + " " + a.peer +
          common + " --infer-reps " + std::to_string(a.infer_reps) + " 2>" + peer_errors_path();
  } else {
    std::string flags;
    for (const auto& part : split(config.substr(3), '-')) {
      if (part == "cl")
        flags += " --channels-last";
      else if (part == "bf16")
        flags += " --bf16";
      else if (part == "auto")
        flags += " --auto-speed";
      else if (part != "glibc")
        flags += " --policy " + part;
    }
    cmd = std::string(glibc ? "WAS_GLIBC_MALLOC=1 " : "") + self + " --child" + common + flags + " --infer-reps " +
          std::to_string(a.infer_reps);
  }
  const auto out = command_output(cmd);
  try {
    return Json::parse(out);
  } catch (const std::exception&) {
    // Missing, with the reason the peer gave (no python3-torch: "No module named 'torch'").
    return Json{{"unavailable", config.rfind("python", 0) == 0 ? last_line_of(peer_errors_path()) : "no output"}};
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"training speed: was against Python PyTorch, allocators, WAS policies, speed flags; one run"};
  app.add_option("--models", a.models)->capture_default_str();
  app.add_option("--configs", a.configs, "python[-glibc], was[-glibc], was-POLICY, was-cl, was-bf16, was-cl-bf16")
      ->capture_default_str();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--steps", a.steps, "timed steps per measurement")->capture_default_str();
  app.add_option("--warmup", a.warmup)->capture_default_str();
  app.add_option("--rounds", a.rounds, "alternating rounds over all configurations")->capture_default_str();
  app.add_option("--threads", a.threads)->capture_default_str();
  app.add_option("--infer-reps", a.infer_reps, "batch-1 inference repetitions")->capture_default_str();
  app.add_option("--python", a.python, "the interpreter with PyTorch (Debian: python3-torch)")->capture_default_str();
  app.add_option("--peer", a.peer, "the Python peer script")->capture_default_str();
  app.add_flag("--profile", a.profile, "print one step of the first model by operator instead");
  app.add_option("--transform-policy", a.transform_policy, "policy whose transform alone is timed");
  app.add_flag("--child", a.child)->group("");
  app.add_option("--model", a.model)->group("");
  app.add_option("--policy", a.policy)->group("");
  app.add_option("--kind", a.child_kind)->group("");
  app.add_flag("--channels-last", a.channels_last)->group("");
  app.add_flag("--bf16", a.bf16)->group("");
  app.add_flag("--auto-speed", a.auto_speed)->group("");
  CLI11_PARSE(app, argc, argv);

  if (a.child || a.profile) {
    if (std::getenv("WAS_GLIBC_MALLOC") == nullptr) was::tune_allocator();
    if (a.profile) {
      if (a.model.empty()) a.model = split(a.models, ',').front();
      profile_steps(a);
      return 0;
    }
    const Json out = a.child_kind == "conv"        ? measure_conv(a)
                     : a.child_kind == "transform" ? measure_transform(a)
                                                   : measure_training(a);
    std::cout << out.dump() << std::endl;
    return 0;
  }
  char self_path[4096] = {};
  if (readlink("/proc/self/exe", self_path, sizeof(self_path) - 1) <= 0) return 1;
  const std::string self = self_path;
  const auto models = split(a.models, ','), configs = split(a.configs, ',');

  std::map<std::pair<std::string, std::string>, std::vector<Json>> results;
  std::vector<double> conv_gflops;
  std::map<std::string, std::vector<Json>> transform;  // per model, the transform alone
  for (int r = 0; r < a.rounds; ++r) {
    for (const auto& model : models)
      for (const auto& config : configs) {
        auto m = run_config(self, a, model, config);
        if (m.contains("unavailable")) {
          std::fprintf(
              stderr, "round %d %-12s %-14s unavailable: %s%s\n", r + 1, model.c_str(), config.c_str(),
              m["unavailable"].get<std::string>().c_str(),
              config.rfind("python", 0) == 0 ? " (the peer needs python3-torch: scripts/bench.sh installs it)" : "");
          m = Json();
        } else {
          std::fprintf(stderr, "round %d %-12s %-14s %.3f s/step%s\n", r + 1, model.c_str(), config.c_str(),
                       m["step_s"].get<double>(),
                       m.contains("chosen") ? (" (chose " + m["chosen"].get<std::string>() + ")").c_str() : "");
        }
        results[{model, config}].push_back(m);
      }
    const auto conv = Json::parse(command_output(self + " --child --kind conv --batch " + std::to_string(a.batch) +
                                                 " --threads " + std::to_string(a.threads)));
    conv_gflops.push_back(conv["gflops"].get<double>());
    for (const auto& model : models)
      transform[model].push_back(
          Json::parse(command_output(self + " --child --kind transform --model " + model + " --policy " +
                                     a.transform_policy + " --threads " + std::to_string(a.threads))));
  }
  std::error_code ignored;
  std::filesystem::remove(peer_errors_path(), ignored);
  const auto med = [&](const std::string& model, const std::string& config, const char* key) {
    std::vector<double> v;
    for (const auto& m : results[{model, config}])
      if (!m.is_null()) v.push_back(m[key].get<double>());
    return v.empty() ? 0.0 : median(v);
  };
  const double conv = median(conv_gflops);
  std::printf("batch %lld, 3x32x32, SGD(0.01, momentum 0.9), %d threads; medians of %d rounds x %d steps\n",
              (long long)a.batch, a.threads, a.rounds, a.steps);
  std::printf("dense reference: one 3x3 64-channel convolution, forward + backward: %.0f GFLOP/s\n", conv);
  for (const auto& model : models) {
    const double py = med(model, "python", "step_s"), py_glibc = med(model, "python-glibc", "step_s");
    const double py_rss = med(model, "python", "peak_rss_mib"), plain = med(model, "was", "step_s");
    std::printf("\n### %s\n\n", model.c_str());
    std::printf(
        "| configuration | s/step | img/s | vs Python tuned | vs Python glibc | vs was plain | peak RSS MiB | "
        "RSS vs Python | infer img/s b%lld | infer img/s b1 |\n",
        (long long)a.batch);
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    // "a/b" as "1.23x", or a dash when a side is missing (no python3-torch, no such model in the peer).
    const auto ratio = [](double a_, double b_) -> std::string {
      if (!(a_ > 0 && b_ > 0)) return "—";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2fx", a_ / b_);
      return buf;
    };
    for (const auto& config : configs) {
      const double t = med(model, config, "step_s");
      if (t == 0) {
        std::printf("| %s | unavailable | | | | | | | | |\n", config.c_str());
        continue;
      }
      std::printf("| %s | %.3f | %.1f | %s | %s | %.3fx | %.0f | %s | %.1f | %.1f |\n", config.c_str(), t,
                  double(a.batch) / t, ratio(py, t).c_str(), ratio(py_glibc, t).c_str(), t / (plain > 0 ? plain : t),
                  med(model, config, "peak_rss_mib"), ratio(med(model, config, "peak_rss_mib"), py_rss).c_str(),
                  med(model, config, "infer_ips_large"), med(model, config, "infer_ips_1"));
    }
    const double automatic = med(model, "was-auto", "step_s"), channels_last = med(model, "was-cl", "step_s");
    if (automatic > 0 && plain > 0 && channels_last > 0) {
      std::string chosen;
      for (const auto& m : results[{model, "was-auto"}])
        if (!m.is_null()) chosen += (chosen.empty() ? "" : ", ") + m.value("chosen", std::string("?"));
      std::printf(
          "\n%s default (was-auto; chose %s): %.3fx the best fixed float32 flags (was, was-cl), %s Python tuned\n",
          model.c_str(), chosen.c_str(), std::min(plain, channels_last) / automatic, ratio(py, automatic).c_str());
    }
    if (plain > 0 && conv > 0) {
      // Training costs about 3x the forward pass (forward, input and weight gradients).
      const double macs = med(model, "was", "macs");
      const double gflops = 3.0 * 2.0 * macs * double(a.batch) / plain / 1e9;
      std::printf("\n%s plain training: %.0f GFLOP/s = %.0f%% of the dense reference convolution\n", model.c_str(),
                  gflops, 100.0 * gflops / conv);
    }
    if (transform[model].empty()) continue;
    const auto tmed = [&](const char* key) {
      std::vector<double> v;
      for (const auto& m : transform[model]) v.push_back(m[key].get<double>());
      return median(v);
    };
    const Json& t = transform[model].front();
    std::printf(
        "%s WAS-%s transform alone (%lld layers, %.1f M weights): forward + backward %.1f ms per step = %.1f%% of "
        "a plain step (as a matmul: %.1f ms = %.1f%%; forward alone %.1f ms; copying every weight once %.1f ms)\n",
        model.c_str(), a.transform_policy.c_str(), (long long)t["layers"].get<int64_t>(),
        t["weights"].get<double>() / 1e6, tmed("forward_backward_ms"),
        plain > 0 ? 100.0 * tmed("forward_backward_ms") / 1e3 / plain : 0.0, tmed("matmul_forward_backward_ms"),
        plain > 0 ? 100.0 * tmed("matmul_forward_backward_ms") / 1e3 / plain : 0.0, tmed("forward_ms"),
        tmed("copy_ms"));
  }
  return 0;
}
