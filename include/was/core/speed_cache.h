// Speed settings chosen by measurement, remembered per machine: which
// memory format (and, only when the user allows it, which precision) runs a
// model fastest on this processor, batch and thread count. A speed choice that
// wins on one processor may lose on another, so the tool measures instead of
// assuming, once, and keeps the answer in ~/.cache/was/settings.json.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace was {

/// The processor, as `lscpu` names it ("Model name"; /proc/cpuinfo's
/// "model name"), or "unknown processor".
std::string processor_name();

/// What a choice is for: the cache key.
struct SpeedKey {
  std::string task;  ///< "predict", "eval", "train"
  std::string model;
  int64_t batch = 0;
  int64_t threads = 0;
  std::string device = "cpu";
  std::string processor;  ///< processor_name() unless set
  std::string to_string() const;
};

/// The candidates a choice is made among.
struct SpeedSettings {
  bool channels_last = false;
  bool bf16 = false;
  /// "nchw", "channels-last", "nchw+bf16", "channels-last+bf16".
  std::string label() const;
  /// Reads label(); nullopt for anything else.
  static std::optional<SpeedSettings> parse(const std::string& label);
  bool operator==(const SpeedSettings& o) const { return channels_last == o.channels_last && bf16 == o.bf16; }
};

/// A choice and where it came from, printable for the user.
struct SpeedChoice {
  SpeedSettings settings;
  std::string source;                                 ///< "measured" or "cached"
  std::vector<std::pair<std::string, double>> times;  ///< seconds per candidate, when measured
  /// "channels-last (measured: nchw 0.812 s, channels-last 0.533 s)".
  std::string describe() const;
};

/// The settings file: $WAS_CACHE_DIR/settings.json, else
/// $XDG_CACHE_HOME/was/settings.json, else ~/.cache/was/settings.json.
/// Entries are keyed by SpeedKey::to_string(). A file that cannot be read,
/// is not the tool's, or holds an entry that does not parse is ignored with a
/// warning, never trusted and never overwritten; writing it is best effort (a
/// warning, never an error) and atomic.
class SpeedCache {
 public:
  explicit SpeedCache(std::string path = default_path());
  static std::string default_path();
  const std::string& path() const { return path_; }

  std::optional<SpeedSettings> find(const SpeedKey& key, const std::function<void(const std::string&)>& warn) const;
  void store(const SpeedKey& key, const SpeedChoice& choice, const std::function<void(const std::string&)>& warn) const;

 private:
  std::string path_;
};

/// The fastest of `candidates` for `key`: from `cache` when it knows the key
/// with these candidates, else by timing each
/// candidate with `seconds_of` (which returns the median seconds of a few
/// real steps) and storing the winner. `cache` may be null (measure, keep nothing).
SpeedChoice choose_speed_settings(const SpeedKey& key, const std::vector<SpeedSettings>& candidates,
                                  const std::function<double(const SpeedSettings&)>& seconds_of,
                                  const SpeedCache* cache, const std::function<void(const std::string&)>& warn);

/// Times `runs` in turns (the machine's speed drifts within a process, so
/// candidates timed in turns see the same machine): one warm-up round, then
/// `rounds` timed ones. Returns each run's seconds, round by round.
std::vector<std::vector<double>> time_in_turns(const std::vector<std::function<void()>>& runs, int rounds);

/// The same, timing here: `run(candidate)` is one real step (it waits for a
/// GPU itself). `prepare` runs once before the first step, and not at all when
/// the cache answers. The candidates take turns (the machine's speed drifts
/// within a run): one warm-up round, then `rounds` timed ones, medians compared.
SpeedChoice choose_speed_settings_by_running(const SpeedKey& key, const std::vector<SpeedSettings>& candidates,
                                             const std::function<void()>& prepare,
                                             const std::function<void(const SpeedSettings&)>& run, int rounds,
                                             const SpeedCache* cache,
                                             const std::function<void(const std::string&)>& warn);

}  // namespace was
