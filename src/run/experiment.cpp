#include "was/run/experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "was/core/atomic_file.h"
#include "was/core/directory_lock.h"
#include "was/core/error.h"
#include "was/core/json_file.h"
#include "was/data/datasets.h"
#include "was/models/classifier.h"
#include "was/run/training.h"
#include "was/transforms.h"

namespace was {
namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace {

const std::set<std::string> kTopKeys = {"name",  "description", "models", "policies", "datasets",
                                        "seeds", "data_dirs",   "train",  "eval",     "budgets"};
const std::set<std::string> kTrainKeys = {"epochs",
                                          "batch_size",
                                          "lr",
                                          "momentum",
                                          "weight_decay",
                                          "cosine",
                                          "bn_batches",
                                          "checkpoint_every",
                                          "eval_every",
                                          "train_subset",
                                          "test_subset",
                                          "augment",
                                          "dom_seed",
                                          "granularity",
                                          "val_fraction",
                                          "val_seed",
                                          "draws",
                                          "combine",
                                          "channels_last",
                                          "bf16",
                                          "protocol",
                                          "stochastic_dom",
                                          "curve_test_images",
                                          "mode_bn_curves"};
/// The training settings that change the weights: a cell trained with other
/// values is a different experiment.
const std::vector<std::string> kDefiningKeys = {"epochs",   "batch_size", "lr",           "momentum", "weight_decay",
                                                "cosine",   "bn_batches", "train_subset", "augment",  "val_fraction",
                                                "val_seed", "draws",      "combine",      "bf16",     "protocol"};

void check_keys(const Json& j, const std::set<std::string>& allowed, const std::string& where) {
  if (!j.is_object()) throw Error(where + " must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
    throw Error("unknown key '" + key + "' in " + where, "the keys are: " + list);
  }
}

/// Budget overrides merged into the base settings, key by key.
void merge_into(Json& base, const Json& overrides) {
  for (const auto& [key, value] : overrides.items()) base[key] = value;
}

std::string label_of(const std::string& policy) {
  if (policy == "none" || policy.empty()) return "baseline";
  std::string out;
  for (char c : policy) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')
      out += c;
    else if (c == ':')
      out += '-';
    else if (c == ',' || c == '@')
      out += '_';
  }
  return out;
}

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", (long long)s);
  return buf;
}

/// Refuses a cell directory whose checkpoint was trained with other settings.
void check_cell_matches(const RunRecord& state, const Cell& cell, const Experiment& e, const std::string& dir) {
  const std::string policy = e.granularity.empty() || cell.policy.policy == "none"
                                 ? cell.policy.policy
                                 : cell.policy.policy + ",granularity=" + e.granularity;
  std::string mismatch;
  if (state.model.name != cell.model)
    mismatch = "model " + state.model.name;
  else if (state.dataset != cell.dataset)
    mismatch = "dataset " + state.dataset;
  else if (state.policy != Policy::parse(policy).to_string())
    mismatch = "policy " + state.policy;
  else if (state.seed != cell.seed)
    mismatch = "seed " + std::to_string(state.seed);
  else if (state.dom_seed != e.dom_seed)
    mismatch = "dom_seed " + std::to_string(state.dom_seed);
  else {
    const Json want = e.train_options().to_json();
    for (const auto& key : kDefiningKeys) {
      const Json have = state.options.to_json().value(key, Json());
      Json expected = want.value(key, Json());
      if (key == "augment" && expected.is_null()) expected = data::augments_by_default(cell.dataset);
      if (have != expected) {
        mismatch = key + " " + (have.is_null() ? std::string("unset") : have.dump()) + " (the experiment asks for " +
                   (expected.is_null() ? std::string("unset") : expected.dump()) + ")";
        break;
      }
    }
  }
  if (!mismatch.empty())
    throw Error("cell '" + dir + "' holds a run with " + mismatch,
                "the output directory belongs to another experiment: choose another --out");
}

}  // namespace

std::string Cell::name() const { return dataset + "-" + model + "-" + policy.label + "-s" + std::to_string(seed); }

std::vector<Cell> cells_of(const Experiment& e) {
  std::vector<uint64_t> seeds = e.seeds;  // the grid's, then the policies' own, in first-seen order
  for (const auto& policy : e.policies)
    for (uint64_t s : policy.seeds)
      if (std::find(seeds.begin(), seeds.end(), s) == seeds.end()) seeds.push_back(s);
  std::vector<Cell> cells;
  for (uint64_t seed : seeds)
    for (const auto& dataset : e.datasets)
      for (const auto& model : e.models)
        for (const auto& policy : e.policies) {
          const auto& own = policy.seeds.empty() ? e.seeds : policy.seeds;
          if (std::find(own.begin(), own.end(), seed) != own.end()) cells.push_back({dataset, model, policy, seed});
        }
  return cells;
}

namespace {

// Shell-style '*' and '?' over the whole name (iterative, with one backtrack point).
bool wildcard_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

std::vector<Cell> select_cells(const Experiment& e, const std::vector<std::string>& patterns) {
  const auto cells = cells_of(e);
  if (patterns.empty()) return cells;
  std::vector<Cell> chosen;
  for (const auto& pattern : patterns) {
    const bool any =
        std::any_of(cells.begin(), cells.end(), [&](const Cell& c) { return wildcard_match(pattern, c.name()); });
    if (!any) {
      std::string names;  // the first few: a grid may have thousands
      for (size_t i = 0; i < std::min<size_t>(cells.size(), 12); ++i) names += (i ? ", " : "") + cells[i].name();
      if (cells.size() > 12) names += " and " + std::to_string(cells.size() - 12) + " more (--dry-run lists them)";
      throw Error("--only '" + pattern + "' matches no cell of experiment " + e.name,
                  "the cells are: " + names + " ('*' matches any run of characters)");
    }
  }
  for (const auto& c : cells)
    if (std::any_of(patterns.begin(), patterns.end(),
                    [&](const std::string& p) { return wildcard_match(p, c.name()); }))
      chosen.push_back(c);
  return chosen;
}

namespace {

// A grid this large is a typo (a seed range pasted twice), not a study.
constexpr size_t kMaxCells = 10000;

// Names become directories (runs/NAME, cells/...-LABEL-sN): letters, digits,
// '.', '_' and '-' only, so no name can leave the grid directory.
void check_path_safe(const std::string& text, const std::string& where) {
  const bool safe = !text.empty() && text.size() <= 100 && text.find("..") == std::string::npos && text[0] != '.' &&
                    std::all_of(text.begin(), text.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
                    });
  if (!safe)
    throw Error(where + " '" + text + "' cannot name a directory",
                "use up to 100 letters, digits, '.', '_' and '-' (no '..', not starting with '.')");
}

// The file's "train" and "eval" with `budget` applied: a factor scales the
// epochs, a name merges that entry of "budgets" over them.
std::pair<Json, Json> budgeted_settings(const Json& j, const std::string& path, const std::string& budget) {
  Json train = j.value("train", Json::object()), eval = j.value("eval", Json::object());
  check_keys(train, kTrainKeys, "\"train\"");
  if (!eval.is_object()) throw Error("\"eval\" must be a JSON object");
  if (budget.empty()) return {train, eval};
  char* end = nullptr;
  const double factor = std::strtod(budget.c_str(), &end);
  if (end && *end == '\0' && end != budget.c_str()) {
    if (!(factor > 0.0 && factor <= 1.0)) throw Error("--budget " + budget + ": a factor must lie in (0, 1]");
    const int64_t epochs =
        train.contains("epochs") ? json_as<int64_t>(train["epochs"], "\"train\": epochs") : TrainOptions{}.epochs;
    train["epochs"] = std::max<int64_t>(1, std::llround(double(epochs) * factor));
    return {train, eval};
  }
  const Json budgets = j.value("budgets", Json::object());
  if (!budgets.is_object() || !budgets.contains(budget)) {
    std::string names;
    if (budgets.is_object())
      for (const auto& [k, v] : budgets.items()) names += (names.empty() ? "" : ", ") + k;
    throw Error("experiment '" + path + "' has no budget '" + budget + "'",
                names.empty() ? "give a factor such as --budget 0.1" : "its budgets: " + names + ", or a factor");
  }
  const Json& b = budgets[budget];
  check_keys(b, {"train", "eval"}, "budget '" + budget + "'");
  for (const auto& [part, base] : {std::pair<const char*, Json*>{"train", &train}, {"eval", &eval}}) {
    if (!b.contains(part)) continue;
    if (!b[part].is_object()) throw Error("\"" + std::string(part) + "\" of budget '" + budget + "' must be an object");
    merge_into(*base, b[part]);
  }
  check_keys(train, kTrainKeys, "\"train\" of budget '" + budget + "'");
  return {train, eval};
}

// A list of names, each one of `known` (models, datasets).
std::vector<std::string> known_names(const Json& j, const char* key, const std::vector<std::string>& known,
                                     const std::string& path) {
  std::vector<std::string> names;
  if (!j.contains(key)) return names;
  const Json& list = j[key];
  if (!list.is_array()) throw Error("\"" + std::string(key) + "\" must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& item = list[i];
    const std::string where = "\"" + std::string(key) + "\"[" + std::to_string(i) + "]";
    const std::string name =
        json_as<std::string>(item.is_object() && item.contains("name") ? item["name"] : item, where);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string all;
      for (const auto& n : known) all += (all.empty() ? "" : ", ") + n;
      throw Error("unknown " + std::string(key == std::string("models") ? "model" : "dataset") + " '" + name +
                      "' in experiment '" + path + "'",
                  "the " + std::string(key) + " are: " + all);
    }
    names.push_back(name);
  }
  return names;
}

void read_data_dirs(const Json& j, Experiment& e) {
  const Json dirs = j.value("data_dirs", Json::object());
  if (!dirs.is_object()) throw Error("\"data_dirs\" must be an object of dataset: directory");
  for (const auto& [name, dir] : dirs.items()) e.data_dirs[name] = json_as<std::string>(dir, "\"data_dirs\": " + name);
  for (const auto& d : j.value("datasets", Json::array())) {
    if (!d.is_object()) continue;
    const std::string name = json_as<std::string>(d.value("name", Json()), "a dataset's \"name\"");
    check_keys(d, {"name", "data_dir"}, "dataset '" + name + "'");
    if (d.contains("data_dir"))
      e.data_dirs[name] = json_as<std::string>(d["data_dir"], "dataset '" + name + "': data_dir");
  }
}

PolicyEntry read_policy(const Json& p, const std::string& where, const std::string& granularity) {
  PolicyEntry entry;
  if (p.is_object()) {
    check_keys(p, {"label", "policy", "seeds"}, where);
    if (!p.contains("policy")) throw Error(where + " has no \"policy\"", "e.g. {\"label\": \"C\", \"policy\": \"C\"}");
    entry.policy = json_as<std::string>(p["policy"], where + ": policy");
    if (p.contains("label")) entry.label = json_as<std::string>(p["label"], where + ": label");
    if (p.contains("seeds")) {
      entry.seeds = json_list_as<uint64_t>(p["seeds"], where + ": seeds");
      if (entry.seeds.empty())
        throw Error(where + " (policy '" + entry.policy + "'): \"seeds\" must not be empty",
                    "drop it to use the grid's seeds");
    }
  } else {
    entry.policy = json_as<std::string>(p, where);
  }
  const bool plain = granularity.empty() || entry.policy == "none";
  Policy::parse(plain ? entry.policy : entry.policy + ",granularity=" + granularity);  // names the problem
  if (entry.label.empty()) entry.label = label_of(entry.policy);
  check_path_safe(entry.label, where + ": label");
  return entry;
}

Experiment read_experiment(const std::string& path, const std::string& budget) {
  const Json j = read_json_file(path, "experiment file");
  check_keys(j, kTopKeys, "experiment file '" + path + "'");
  Experiment e;
  e.name = j.contains("name") ? json_as<std::string>(j["name"], "\"name\"") : fs::path(path).stem().string();
  check_path_safe(e.name, "the experiment name");
  if (j.contains("description")) e.description = json_as<std::string>(j["description"], "\"description\"");
  e.budget = budget;

  // The budget first: it may change any training or evaluation setting.
  auto [train, eval] = budgeted_settings(j, path, budget);
  if (train.contains("dom_seed")) e.dom_seed = json_as<int64_t>(train["dom_seed"], "\"train\": dom_seed");
  if (e.dom_seed < 0) throw Error("\"train\": dom_seed must be a non-negative integer");
  if (train.contains("granularity"))
    e.granularity = json_as<std::string>(train["granularity"], "\"train\": granularity");
  train.erase("dom_seed");
  train.erase("granularity");
  e.train = train;
  e.train_options();  // validates the values now, before any cell runs
  if (eval.contains("robustness_models")) {
    e.robustness_models = json_list_as<std::string>(eval["robustness_models"], "\"eval\": robustness_models");
    eval.erase("robustness_models");
  }
  if (eval.contains("robustness_seeds")) {
    e.robustness_seeds = json_list_as<uint64_t>(eval["robustness_seeds"], "\"eval\": robustness_seeds");
    eval.erase("robustness_seeds");
  }
  e.eval = EvalSpec::from_json(eval);

  e.models = known_names(j, "models", models::model_names(), path);
  for (const auto& m : e.robustness_models)
    if (std::find(e.models.begin(), e.models.end(), m) == e.models.end())
      throw Error("\"eval\": robustness_models names '" + m + "', which the grid does not train");
  e.datasets = known_names(j, "datasets", data::dataset_names(), path);
  read_data_dirs(j, e);

  std::set<std::string> labels;
  const Json policies = j.value("policies", Json::array());
  if (!policies.is_array()) throw Error("\"policies\" must be a list");
  for (size_t i = 0; i < policies.size(); ++i) {
    PolicyEntry entry = read_policy(policies[i], "\"policies\"[" + std::to_string(i) + "]", e.granularity);
    if (!labels.insert(entry.label).second)
      throw Error("two policies share the label '" + entry.label + "'", "give each a distinct \"label\"");
    e.policies.push_back(entry);
  }
  if (j.contains("seeds")) e.seeds = json_list_as<uint64_t>(j["seeds"], "\"seeds\"");

  for (const auto& [axis, size] : {std::pair<const char*, size_t>{"models", e.models.size()},
                                   {"policies", e.policies.size()},
                                   {"datasets", e.datasets.size()},
                                   {"seeds", e.seeds.size()}})
    if (size == 0)
      throw Error("the grid of '" + path + "' is empty: \"" + axis + "\" lists nothing",
                  "list at least one entry in \"" + std::string(axis) + "\"");
  // Bounded before the cells are listed: a hostile grid could not even be counted.
  size_t seeds = e.seeds.size();
  for (const auto& p : e.policies) seeds += p.seeds.size();
  const double bound = double(e.models.size()) * double(e.datasets.size()) * double(e.policies.size()) * double(seeds);
  const size_t cells = bound > 1e6 ? static_cast<size_t>(bound) : cells_of(e).size();
  if (cells > kMaxCells)
    throw Error("the grid of '" + path + "' has " + std::to_string(cells) + " cells, over the limit of " +
                    std::to_string(kMaxCells),
                "split it into several experiment files");
  return e;
}

}  // namespace

Experiment Experiment::load(const std::string& path, const std::string& budget) {
  try {
    return read_experiment(path, budget);
  } catch (const Error& e) {
    // Every message names the file, however deep the value that failed.
    if (std::string(e.what()).find("'" + path + "'") != std::string::npos) throw;
    throw Error("experiment '" + path + "': " + e.what(), e.hint());
  }
}

std::vector<std::string> Experiment::given_train_keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, value] : train.items()) keys.push_back(key);
  return keys;
}

TrainOptions Experiment::train_options() const {
  try {
    TrainOptions o = TrainOptions::from_json(train);
    apply_protocol(o, given_train_keys());  // what "protocol" fixes, against the keys the file sets
    o.validate();
    return o;
  } catch (const Error& e) {
    throw Error("\"train\": " + std::string(e.what()), e.hint());
  }
}

Json Experiment::to_json() const {
  Json policy_list = Json::array();
  for (const auto& p : policies) {
    Json entry = {{"label", p.label}, {"policy", p.policy}};
    if (!p.seeds.empty()) entry["seeds"] = p.seeds;
    policy_list.push_back(entry);
  }
  Json train_all = train;
  train_all["dom_seed"] = dom_seed;
  if (!granularity.empty()) train_all["granularity"] = granularity;
  Json eval_all = eval.to_json();
  if (!robustness_models.empty()) eval_all["robustness_models"] = robustness_models;
  if (!robustness_seeds.empty()) eval_all["robustness_seeds"] = robustness_seeds;
  return {{"name", name},     {"description", description}, {"budget", budget},
          {"models", models}, {"policies", policy_list},    {"datasets", datasets},
          {"seeds", seeds},   {"data_dirs", data_dirs},     {"train", train_all},
          {"eval", eval_all}};
}

void Experiment::set_data_dir(const std::string& dataset, const std::string& path) {
  if (std::find(datasets.begin(), datasets.end(), dataset) == datasets.end())
    throw Error("--data-dir names dataset '" + dataset + "', which the experiment does not use");
  data_dirs[dataset] = path;
}

std::string default_grid_directory(const Experiment& e) {
  return "runs/" + e.name + (e.budget.empty() ? "" : "-" + label_of(e.budget));
}

void check_grid(const Experiment& e, const std::string& out) {
  if (fs::exists(out) && !fs::is_directory(out))
    throw Error("--out '" + out + "' exists and is not a directory", "choose a directory for the grid");
  const auto manifest = fs::path(out) / "experiment.json";
  if (fs::exists(manifest)) {
    const Json old = read_json_file(manifest.string(), "experiment manifest");
    const Json now = e.to_json();
    if (old.value("train", Json()) != now["train"])
      throw Error("'" + out + "' holds a grid with other training settings (" + old.value("train", Json()).dump() + ")",
                  "choose another --out, or restore the experiment file it was run with");
  }
  for (const auto& dataset : e.datasets) {
    const auto dir = e.data_dirs.count(dataset) ? e.data_dirs.at(dataset) : std::string();
    data::load_dataset(dataset, dir, data::DatasetOptions{});  // a missing data set fails now, not mid-grid
  }
}

std::string grid_headline(const Experiment& e, const std::string& out) {
  const auto cells = cells_of(e);
  const size_t product = e.models.size() * e.policies.size() * e.datasets.size() * e.seeds.size();
  const std::string extra = cells.size() == product ? "" : ", some policies with seeds of their own";
  char line[512];
  std::snprintf(line, sizeof line,
                "experiment %s%s: %zu cells (%zu models x %zu policies x %zu datasets x %zu seeds%s), out %s",
                e.name.c_str(), e.budget.empty() ? "" : (", budget " + e.budget).c_str(), cells.size(), e.models.size(),
                e.policies.size(), e.datasets.size(), e.seeds.size(), extra.c_str(), out.c_str());
  return line;
}

GridOutcome run_grid(const Experiment& e, GridOptions a) {
  const auto say = [&](const std::string& line) {
    if (a.on_message) a.on_message(line);
  };
  if (a.out.empty()) a.out = default_grid_directory(e);
  check_grid(e, a.out);
  const auto cells = select_cells(e, a.only);
  const size_t left_out = cells_of(e).size() - cells.size();
  const fs::path out(a.out);
  const auto manifest = out / "experiment.json";
  say(grid_headline(e, a.out));
  const torch::Device device = a.device;
  fs::create_directories(out / "cells");
  write_file_atomically(manifest.string(), e.to_json().dump(2) + "\n", "experiment manifest");

  // 2. The cells, each trained (or resumed) and then evaluated.
  const auto grid_start = Clock::now();
  double worked_seconds = 0.0;
  int64_t worked_cells = 0;
  size_t skipped = 0;
  Json summary = Json::array();
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& cell = cells[i];
    const fs::path dir = out / "cells" / cell.name();
    const auto data_dir = e.data_dirs.count(cell.dataset) ? e.data_dirs.at(cell.dataset) : std::string();
    const std::string tag = "[" + std::to_string(i + 1) + "/" + std::to_string(cells.size()) + "] " + cell.name();
    const auto cell_start = Clock::now();
    bool worked = false;
    // Several `was experiment` processes may share a grid: each takes the
    // cells no other holds, so N processes run N cells at once.
    const auto lock = DirectoryLock::try_acquire(dir.string());
    if (!lock) {
      const long pid = DirectoryLock::holder_of(dir.string());
      say(tag + ": running in another process" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : "") + "; skipped");
      ++skipped;
      continue;
    }

    const auto checkpoint_path = dir / "last.pt";
    bool trained = false;
    if (fs::exists(checkpoint_path)) {
      const RunRecord state = read_run_state(checkpoint_path.string());
      check_cell_matches(state, cell, e, dir.string());
      trained = state.finished;
    }
    if (!trained) {
      TrainRequest t;
      t.model = cell.model;
      t.dataset = cell.dataset;
      t.data_dir = data_dir;
      t.policy = cell.policy.policy;
      t.granularity = cell.policy.policy == "none" ? "" : e.granularity;
      t.seed = cell.seed;
      t.dom_seed = e.dom_seed;
      t.options = e.train_options();
      t.out = dir.string();
      t.directory_locked = true;
      t.device = device;
      t.on_message = a.on_message;
      t.on_batch = a.on_batch;
      if (fs::exists(checkpoint_path)) {
        t.resume = dir.string();
        say(tag + ": resuming training");
      } else {
        say(tag + ": training");
        for (auto key : e.given_train_keys()) {  // the file's keys, as the options a protocol is checked against
          std::replace(key.begin(), key.end(), '_', '-');
          t.given.push_back("--" + key);
        }
      }
      const RunRecord state = train_run(t);
      if (a.on_cell_trained) a.on_cell_trained(dir.string(), state);
      if (!state.finished) throw Error(tag + ": training stopped before the last epoch");
      worked = true;
    }

    const auto eval_path = dir / "eval.json";
    EvalSpec spec = e.eval;
    const bool robust =
        (e.robustness_models.empty() ||
         std::count(e.robustness_models.begin(), e.robustness_models.end(), cell.model) > 0) &&
        (e.robustness_seeds.empty() || std::count(e.robustness_seeds.begin(), e.robustness_seeds.end(), cell.seed) > 0);
    if (!robust) spec.augmentations.clear();
    Json evaluation;
    if (fs::exists(eval_path)) {
      evaluation = read_json_file(eval_path.string(), "cell evaluation");
      if (evaluation.value("spec", Json()) != spec.to_json()) evaluation = Json();
    }
    if (evaluation.is_null()) {
      say(tag + ": evaluating");
      const auto eval_start = Clock::now();
      auto ckpt = load_checkpoint(checkpoint_path.string(), device);
      evaluation = evaluate_run(ckpt, spec, data_dir, device, cell.name());
      evaluation["cell"] = {
          {"dataset", cell.dataset}, {"model", cell.model}, {"policy_label", cell.policy.label}, {"seed", cell.seed}};
      evaluation["eval_seconds"] = std::chrono::duration<double>(Clock::now() - eval_start).count();
      double train_seconds = 0.0;
      for (const auto& epoch : ckpt.state.history) train_seconds += epoch.seconds;
      evaluation["train_seconds"] = train_seconds;
      write_file_atomically(eval_path.string(), evaluation.dump(2) + "\n", "cell evaluation");
      worked = true;
    }
    summary.push_back(evaluation);

    const double cell_seconds = std::chrono::duration<double>(Clock::now() - cell_start).count();
    if (worked) {
      worked_seconds += cell_seconds;
      ++worked_cells;
    }
    const size_t left = cells.size() - i - 1;
    std::string eta;
    if (worked_cells > 0 && left > 0)
      eta = ", about " + duration(worked_seconds / double(worked_cells) * double(left)) + " left";
    say(tag + ": " + (worked ? "done" : "already done") + " in " + duration(cell_seconds) + "; grid " +
        std::to_string(i + 1) + "/" + std::to_string(cells.size()) + " cells done, elapsed " +
        duration(std::chrono::duration<double>(Clock::now() - grid_start).count()) + eta);
  }
  GridOutcome outcome{a.out, summary, skipped, left_out};
  if (left_out > 0) {
    say(std::to_string(left_out) +
        " cells were left out by --only; the grid summary is written by a run over every cell");
    return outcome;
  }
  if (skipped > 0) {
    say(std::to_string(skipped) +
        " cells were running in other processes; the grid summary is written by the run that finds every cell "
        "done (run `was experiment` again once they finish)");
    return outcome;
  }
  write_file_atomically((out / "summary.json").string(), summary.dump(2) + "\n", "grid summary");
  return outcome;
}

}  // namespace was
