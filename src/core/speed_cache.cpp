#include "was/core/speed_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/json_file.h"

namespace was {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCacheKind = "was-speed-settings";
constexpr int kCacheVersion = 1;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The whole file, or nullopt with a warning for anything the tool did not write.
std::optional<nlohmann::json> read_cache(const std::string& path, const std::function<void(const std::string&)>& warn) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    auto j = read_json_file(path, "speed settings cache", JsonLimits{1u << 20, 8});
    if (!j.is_object() || j.value("kind", "") != kCacheKind || j.value("version", 0) != kCacheVersion ||
        !j.contains("entries") || !j["entries"].is_object()) {
      warn("ignoring the speed settings cache '" + path + "': not a file this version of was wrote (delete it)");
      return std::nullopt;
    }
    return j;
  } catch (const Error& e) {
    warn(std::string("ignoring the speed settings cache: ") + e.what() + " (delete it)");
    return std::nullopt;
  }
}

}  // namespace

std::string processor_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return trim(line.substr(colon + 1));
  }
  return "unknown processor";
}

std::string SpeedKey::to_string() const {
  std::ostringstream os;
  os << task << "|" << model << "|batch " << batch << "|threads " << threads << "|" << device << "|"
     << (processor.empty() ? processor_name() : processor);
  return os.str();
}

std::string SpeedSettings::label() const {
  return std::string(channels_last ? "channels-last" : "nchw") + (bf16 ? "+bf16" : "");
}

std::optional<SpeedSettings> SpeedSettings::parse(const std::string& label) {
  for (bool cl : {false, true})
    for (bool bf : {false, true})
      if (SpeedSettings{cl, bf}.label() == label) return SpeedSettings{cl, bf};
  return std::nullopt;
}

std::string SpeedChoice::describe() const {
  std::string out = settings.label() + " (" + source;
  for (size_t i = 0; i < times.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g s", times[i].second);
    out += (i == 0 ? ": " : ", ") + times[i].first + " " + buf;
  }
  return out + ")";
}

SpeedCache::SpeedCache(std::string path) : path_(std::move(path)) {}

std::string SpeedCache::default_path() {
  if (const char* dir = std::getenv("WAS_CACHE_DIR"); dir && *dir) return (fs::path(dir) / "settings.json").string();
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return (fs::path(xdg) / "was" / "settings.json").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".cache" / "was" / "settings.json").string();
}

std::optional<SpeedSettings> SpeedCache::find(const SpeedKey& key,
                                              const std::function<void(const std::string&)>& warn) const {
  const auto j = read_cache(path_, warn);
  if (!j) return std::nullopt;
  const auto& entries = (*j)["entries"];
  const auto it = entries.find(key.to_string());
  if (it == entries.end()) return std::nullopt;
  const auto settings = it->is_object() && it->contains("settings") && (*it)["settings"].is_string()
                            ? SpeedSettings::parse((*it)["settings"].get<std::string>())
                            : std::nullopt;
  if (!settings) warn("ignoring a malformed entry of the speed settings cache '" + path_ + "': measuring again");
  return settings;
}

void SpeedCache::store(const SpeedKey& key, const SpeedChoice& choice,
                       const std::function<void(const std::string&)>& warn) const {
  try {
    std::error_code ec;
    auto existing = read_cache(path_, [](const std::string&) {});
    if (!existing && fs::exists(path_, ec)) {
      // Not ours, or damaged: never overwritten, the user decides.
      warn("not remembering the speed settings: '" + path_ + "' is not a cache this version of was wrote");
      return;
    }
    nlohmann::json j = existing.value_or(
        nlohmann::json{{"kind", kCacheKind}, {"version", kCacheVersion}, {"entries", nlohmann::json::object()}});
    nlohmann::json times = nlohmann::json::object();
    for (const auto& [label, seconds] : choice.times) times[label] = seconds;
    j["entries"][key.to_string()] = {{"settings", choice.settings.label()}, {"seconds", times}};
    const fs::path p(path_);
    if (p.has_parent_path()) fs::create_directories(p.parent_path());
    write_file_atomically(path_, j.dump(2) + "\n", "speed settings cache");
  } catch (const std::exception& e) {
    warn(std::string("could not remember the speed settings in '") + path_ + "': " + e.what());
  }
}

SpeedChoice choose_speed_settings(const SpeedKey& key, const std::vector<SpeedSettings>& candidates,
                                  const std::function<double(const SpeedSettings&)>& seconds_of,
                                  const SpeedCache* cache, const std::function<void(const std::string&)>& warn) {
  if (candidates.empty()) throw Error("choose_speed_settings: no candidates");
  SpeedChoice choice;
  if (candidates.size() == 1) {
    choice.settings = candidates.front();
    choice.source = "the only candidate";
    return choice;
  }
  // What was measured among other candidates is no answer here: they are part of the key.
  SpeedKey among = key;
  for (size_t i = 0; i < candidates.size(); ++i) among.task += (i ? "," : " among ") + candidates[i].label();
  if (cache != nullptr)
    if (auto cached = cache->find(among, warn)) {
      for (const auto& c : candidates)
        if (c == *cached) {
          choice.settings = c;
          choice.source = "cached in " + cache->path();
          return choice;
        }
    }
  double best = 0;
  for (const auto& c : candidates) {
    const double s = seconds_of(c);
    choice.times.emplace_back(c.label(), s);
    if (choice.times.size() == 1 || s < best) {
      best = s;
      choice.settings = c;
    }
  }
  choice.source = "measured";
  if (cache != nullptr) cache->store(among, choice, warn);
  return choice;
}

std::vector<std::vector<double>> time_in_turns(const std::vector<std::function<void()>>& runs, int rounds) {
  std::vector<std::vector<double>> seconds(runs.size());
  for (int round = 0; round <= rounds; ++round)  // round 0 warms every run up
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      runs[i]();
      if (round > 0)
        seconds[i].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  return seconds;
}

SpeedChoice choose_speed_settings_by_running(const SpeedKey& key, const std::vector<SpeedSettings>& candidates,
                                             const std::function<void()>& prepare,
                                             const std::function<void(const SpeedSettings&)>& run, int rounds,
                                             const SpeedCache* cache,
                                             const std::function<void(const std::string&)>& warn) {
  std::map<std::string, std::vector<double>> seconds;
  const auto median_of = [&](const SpeedSettings& s) {
    if (seconds.empty()) {
      if (prepare) prepare();
      std::vector<std::function<void()>> runs;
      for (const auto& c : candidates) runs.push_back([&run, c] { run(c); });
      const auto timed = time_in_turns(runs, rounds);
      for (size_t i = 0; i < candidates.size(); ++i) seconds[candidates[i].label()] = timed[i];
    }
    auto v = seconds[s.label()];
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return choose_speed_settings(key, candidates, median_of, cache, warn);
}

}  // namespace was
