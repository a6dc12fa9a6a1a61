// Small helpers shared by the benchmarks.
#pragma once

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace was::bench {

/// "a,b,,c" -> {"a", "b", "c"} (empty fields dropped).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// The median (mean of the middle two for an even count); 0 when empty.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// The value at fraction q of the sorted values (the upper middle for q = 0.5).
inline double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(q * double(v.size())))];
}

/// What `cmd` (run by the shell) writes to stdout; a child benchmark's JSON.
inline std::string command_output(const std::string& cmd) {
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[1024];
  while (fgets(buf, sizeof buf, pipe.get())) out += buf;
  return out;
}

/// Times `run` by top-level operator (nested operators are inside their
/// parent's time; backward nodes by their autograd names) and prints a table
/// of the `rows` largest: ms per run, share of the wall time, calls per run.
/// `by_shape`: convolutions apart by weight shape, input size and padding.
inline void print_operator_profile(const std::function<void()>& run, int runs, size_t rows = 18,
                                   bool by_shape = false) {
  struct Span : at::ObserverContext {
    Clock::time_point start;
    bool top = false;
    std::string label;
  };
  static thread_local int depth = 0;
  static std::mutex mutex;
  static std::map<std::string, std::pair<double, int64_t>> totals;
  static bool shapes = false;
  totals.clear();
  shapes = by_shape;
  auto callback = at::RecordFunctionCallback(
      [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        auto span = std::make_unique<Span>();
        span->top = depth++ == 0;
        if (span->top && shapes && std::string(fn.name()) == "aten::conv2d") {
          const auto in = fn.inputs();
          const auto x = in[0].toTensor(), w = in[1].toTensor();
          const auto pad = in[4].toIntVector();
          span->label = "conv2d " + std::to_string(w.size(0)) + "x" + std::to_string(w.size(1)) + "x" +
                        std::to_string(w.size(2)) + "x" + std::to_string(w.size(3)) + " on " +
                        std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + " pad " + std::to_string(pad[0]) +
                        "," + std::to_string(pad[1]);
        }
        span->start = Clock::now();
        return span;
      },
      [](const at::RecordFunction& fn, at::ObserverContext* raw) {
        --depth;
        auto* span = static_cast<Span*>(raw);
        if (span == nullptr || !span->top) return;
        std::string name = span->label.empty() ? fn.name() : span->label;
        const std::string prefix = "autograd::engine::evaluate_function: ";
        if (name.rfind(prefix, 0) == 0) name = "backward: " + name.substr(prefix.size());
        const double dt = std::chrono::duration<double>(Clock::now() - span->start).count();
        std::lock_guard<std::mutex> lock(mutex);
        auto& t = totals[name];
        t.first += dt;
        t.second += 1;
      });
  auto handle = at::addGlobalCallback(by_shape ? callback.needsInputs(true) : callback);
  const auto t0 = Clock::now();
  for (int i = 0; i < runs; ++i) run();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  at::removeCallback(handle);
  std::vector<std::pair<double, std::string>> sorted;
  double covered = 0;
  for (const auto& [name, t] : totals) {
    sorted.push_back({t.first, name});
    covered += t.first;
  }
  std::sort(sorted.rbegin(), sorted.rend());
  std::printf("%.1f ms per run, by top-level operator (%d runs)\n\n", 1e3 * wall / runs, runs);
  std::printf("| operator | ms per run | share | calls per run |\n|---|---:|---:|---:|\n");
  for (size_t i = 0; i < sorted.size() && i < rows; ++i)
    std::printf("| %s | %.1f | %.1f%% | %lld |\n", sorted[i].second.c_str(), 1e3 * sorted[i].first / runs,
                100 * sorted[i].first / wall, (long long)(totals[sorted[i].second].second / runs));
  std::printf("| (all operators) | %.1f | %.1f%% | |\n", 1e3 * covered / runs, 100 * covered / wall);
}

}  // namespace was::bench
