// Training-step time of a model under each allocator setting and WAS policy,
// measured in one run: the parent runs itself as children, alternating the
// configurations, and prints medians and ratios.
//
//   build/bench/was_bench_step --model resnet18 --batch 128 --steps 3 --rounds 2
//
// The allocator is a process-wide, one-way setting, hence one child process
// per measurement (WAS_GLIBC_MALLOC=1 keeps glibc's defaults).
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "was/network.h"
#include "was/runtime.h"

namespace {

struct Args {
  std::string model = "resnet18";
  int64_t batch = 128;
  int64_t image = 32;
  int steps = 3;
  int warmup = 1;
  int rounds = 2;
  int threads = 2;
  std::vector<std::string> policies = {"none", "CTR"};
  std::vector<std::string> allocators = {"glibc", "tuned"};
  bool child = false;
  std::string policy = "none";
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// One measurement: median seconds per full SGD step, peak RSS.
nlohmann::json measure(const Args& a) {
  was::set_threads(a.threads);
  torch::manual_seed(0);
  was::Network net({a.model, 10, 3, a.image}, was::Policy::parse(a.policy), 0);
  torch::optim::SGD opt(net.module().parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto x = torch::randn({a.batch, 3, a.image, a.image});
  const auto y = torch::randint(0, 10, {a.batch});
  std::vector<double> times;
  for (int s = 0; s < a.warmup + a.steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    net.begin_training_step(s);
    auto loss = torch::nn::functional::cross_entropy(net.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= a.warmup) times.push_back(dt);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {{"step_s", median(times)}, {"peak_rss_mib", usage.ru_maxrss / 1024.0}};
}

nlohmann::json run_child(const std::string& self, const Args& a, const std::string& allocator,
                         const std::string& policy) {
  const std::string cmd = std::string(allocator == "glibc" ? "WAS_GLIBC_MALLOC=1 " : "") + self +
                          " --child --model " + a.model + " --batch " + std::to_string(a.batch) + " --image " +
                          std::to_string(a.image) + " --steps " + std::to_string(a.steps) + " --warmup " +
                          std::to_string(a.warmup) + " --threads " + std::to_string(a.threads) + " --policy " + policy;
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  return nlohmann::json::parse(out);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"training-step benchmark: allocator settings and WAS policies, alternated in one run"};
  app.add_option("--model", a.model)->capture_default_str();
  app.add_option("--batch", a.batch)->capture_default_str();
  app.add_option("--image", a.image)->capture_default_str();
  app.add_option("--steps", a.steps, "timed steps per measurement")->capture_default_str();
  app.add_option("--warmup", a.warmup)->capture_default_str();
  app.add_option("--rounds", a.rounds, "alternating rounds over all configurations")->capture_default_str();
  app.add_option("--threads", a.threads)->capture_default_str();
  app.add_option("--policies", a.policies, "WAS policies to compare")->capture_default_str();
  app.add_option("--allocators", a.allocators, "glibc and/or tuned")->capture_default_str();
  app.add_flag("--child", a.child)->group("");
  app.add_option("--policy", a.policy)->group("");
  CLI11_PARSE(app, argc, argv);

  if (a.child) {
    if (std::getenv("WAS_GLIBC_MALLOC") == nullptr) was::tune_allocator();
    std::cout << measure(a).dump() << std::endl;
    return 0;
  }
  char self[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;

  std::map<std::pair<std::string, std::string>, std::vector<double>> times, rss;
  for (int r = 0; r < a.rounds; ++r)
    for (const auto& alloc : a.allocators)
      for (const auto& policy : a.policies) {
        const auto m = run_child(self, a, alloc, policy);
        times[{alloc, policy}].push_back(m["step_s"].get<double>());
        rss[{alloc, policy}].push_back(m["peak_rss_mib"].get<double>());
        std::fprintf(stderr, "round %d %-6s %-10s %.3f s/step\n", r + 1, alloc.c_str(), policy.c_str(),
                     m["step_s"].get<double>());
      }
  const auto base_key = std::make_pair(a.allocators.back(), a.policies.front());
  const double base = median(times[base_key]);
  std::printf("\n%s, batch %lld, %dx%d, %d threads; median of %d rounds x %d steps\n\n", a.model.c_str(),
              (long long)a.batch, int(a.image), int(a.image), a.threads, a.rounds, a.steps);
  std::printf("| allocator | policy | s/step | images/s | vs %s %s | peak RSS (MiB) |\n", base_key.first.c_str(),
              base_key.second.c_str());
  std::printf("|---|---|---:|---:|---:|---:|\n");
  for (const auto& alloc : a.allocators)
    for (const auto& policy : a.policies) {
      const double t = median(times[{alloc, policy}]);
      std::printf("| %s | %s | %.3f | %.1f | %.2fx | %.0f |\n", alloc.c_str(), policy.c_str(), t, double(a.batch) / t,
                  t / base, median(rss[{alloc, policy}]));
    }
  return 0;
}
