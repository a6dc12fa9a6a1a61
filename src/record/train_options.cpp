#include "was/record/train_options.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "was/core/error.h"
#include "was/core/json_file.h"

namespace was {
namespace {

std::string flag_of(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

// Reads j[key] into `value` when present. A value of the wrong JSON type, or
// a whole number out of T's range (1e20 epochs, -1 as a seed), names its key
// rather than wrapping silently or surfacing nlohmann's type_error.
template <typename T>
void read_setting(const nlohmann::json& j, const char* key, T& value) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!json_to(*it, value))
    throw Error("training setting \"" + std::string(key) + "\" is " + it->dump() + ", not " + json_type_wanted<T>(),
                "give " + flag_of(key) + " (\"" + key + "\") " + json_type_wanted<T>());
}

}  // namespace

void TrainOptions::validate() const {
  const auto at_least = [](const char* key, int64_t value, int64_t least) {
    if (value < least)
      throw Error(
          std::string(key) + " must be " + (least == 0 ? "non-negative" : "at least " + std::to_string(least)) +
              ", got " + std::to_string(value),
          "set " + flag_of(key) + " (\"" + key + "\" in an experiment file) to " + std::to_string(least) + " or more");
  };
  at_least("epochs", epochs, 1);
  at_least("batch_size", batch_size, 1);
  at_least("draws", draws, 1);
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"bn_batches", bn_batches},
                                   {"checkpoint_every", checkpoint_every},
                                   {"eval_every", eval_every},
                                   {"max_steps", max_steps},
                                   {"train_subset", train_subset},
                                   {"test_subset", test_subset},
                                   {"stochastic_dom", stochastic_dom},
                                   {"curve_test_images", curve_test_images}})
    at_least(key, value, 0);
  if (!(lr > 0.0) || !std::isfinite(lr))
    throw Error("lr must be a positive finite number, got " + std::to_string(lr), "e.g. --lr 0.01");
  for (const auto& [key, value] :
       {std::pair<const char*, double>{"momentum", momentum}, {"weight_decay", weight_decay}})
    if (!(value >= 0.0) || !std::isfinite(value))
      throw Error(std::string(key) + " must be a non-negative finite number, got " + std::to_string(value),
                  "set " + flag_of(key) + " to 0 or more");
  if (val_fraction != 0.0 && !(val_fraction > 0.0 && val_fraction < 1.0))
    throw Error("val_fraction must lie in (0, 1), got " + std::to_string(val_fraction),
                "e.g. --val-fraction 0.1 holds out a tenth of the training images");
  if (combine != "mean" && combine != "min")
    throw Error("combine must be mean or min, not '" + combine + "'", "--combine mean or --combine min");
  if (!protocol.empty() &&
      std::find(protocol_names().begin(), protocol_names().end(), protocol) == protocol_names().end())
    throw Error("unknown protocol '" + protocol + "'",
                "the protocols are: paper (the released code's training and evaluation); omit it for the project's");
  if (mode_bn_curves && protocol == "paper")
    throw Error("--mode-bn-curves is for the project's protocol",
                "--protocol paper evaluates with running statistics and as the released code does; drop one");
  if (mode_bn_curves && bn_batches <= 0)
    throw Error("--mode-bn-curves re-estimates BatchNorm from --bn-batches batches, which is 0",
                "set --bn-batches to a positive number");
}

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j = {{"epochs", epochs},
                      {"batch_size", batch_size},
                      {"lr", lr},
                      {"momentum", momentum},
                      {"weight_decay", weight_decay},
                      {"cosine", cosine},
                      {"bn_batches", bn_batches},
                      {"checkpoint_every", checkpoint_every},
                      {"eval_every", eval_every}};
  if (augment) j["augment"] = *augment;
  if (val_fraction > 0) {
    j["val_fraction"] = val_fraction;
    j["val_seed"] = val_seed;
  }
  if (draws != 1) {
    j["draws"] = draws;
    j["combine"] = combine;
  }
  if (train_subset > 0) j["train_subset"] = train_subset;
  if (test_subset > 0) j["test_subset"] = test_subset;
  if (channels_last) j["channels_last"] = true;
  if (bf16) j["bf16"] = true;
  if (!protocol.empty()) j["protocol"] = protocol;
  if (stochastic_dom > 0) j["stochastic_dom"] = stochastic_dom;
  if (curve_test_images > 0) j["curve_test_images"] = curve_test_images;
  if (mode_bn_curves) j["mode_bn_curves"] = true;
  return j;
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("the training settings are " + std::string(j.type_name()) + ", not an object");
  TrainOptions o;
  read_setting(j, "epochs", o.epochs);
  read_setting(j, "batch_size", o.batch_size);
  read_setting(j, "lr", o.lr);
  read_setting(j, "momentum", o.momentum);
  read_setting(j, "weight_decay", o.weight_decay);
  read_setting(j, "cosine", o.cosine);
  read_setting(j, "bn_batches", o.bn_batches);
  read_setting(j, "checkpoint_every", o.checkpoint_every);
  read_setting(j, "eval_every", o.eval_every);
  read_setting(j, "train_subset", o.train_subset);
  read_setting(j, "test_subset", o.test_subset);
  read_setting(j, "val_fraction", o.val_fraction);
  read_setting(j, "val_seed", o.val_seed);
  read_setting(j, "draws", o.draws);
  read_setting(j, "combine", o.combine);
  read_setting(j, "channels_last", o.channels_last);
  read_setting(j, "bf16", o.bf16);
  read_setting(j, "protocol", o.protocol);
  read_setting(j, "stochastic_dom", o.stochastic_dom);
  read_setting(j, "curve_test_images", o.curve_test_images);
  read_setting(j, "mode_bn_curves", o.mode_bn_curves);
  // Absent in runs from before augmentation existed: the data set's default, off for those.
  if (j.contains("augment") && !j["augment"].is_null()) {
    bool augment = false;
    read_setting(j, "augment", augment);
    o.augment = augment;
  }
  return o;
}

const std::vector<std::string>& protocol_names() {
  static const std::vector<std::string> names = {"paper"};
  return names;
}

void apply_protocol(TrainOptions& options, const std::vector<std::string>& given) {
  if (options.protocol.empty()) return;
  if (options.protocol != "paper")
    throw Error("unknown protocol '" + options.protocol + "'",
                "the protocols are: paper (the released code's training and evaluation); omit it for the project's");
  const auto was_given = [&](const std::string& key) {
    return std::find(given.begin(), given.end(), key) != given.end();
  };
  TrainOptions p = options;
  p.lr = 0.01;
  p.momentum = 0.9;
  p.weight_decay = 0.0;
  p.cosine = false;
  p.batch_size = 128;
  p.augment = false;
  if (!was_given("eval_every")) p.eval_every = 1;
  p.draws = 1;
  p.combine = "mean";
  if (!was_given("epochs")) p.epochs = 500;
  if (!was_given("stochastic_dom")) p.stochastic_dom = 5;
  const auto asked = options.to_json(), fixed = p.to_json();
  for (const char* key : {"lr", "momentum", "weight_decay", "cosine", "batch_size", "augment", "draws"}) {
    if (!was_given(key)) continue;
    const auto a = asked.value(key, nlohmann::json()), f = fixed.value(key, nlohmann::json());
    const bool same = a == f || (std::string(key) == "draws" && a.is_null());
    if (!same) {
      std::string flag = key;
      std::replace(flag.begin(), flag.end(), '_', '-');
      throw Error("--protocol paper trains with " + std::string(key) + " " + (f.is_null() ? "unset" : f.dump()) +
                      ", not " + (a.is_null() ? "unset" : a.dump()),
                  "drop --" + flag + " (or \"" + key + "\"), or drop the protocol");
    }
  }
  options = p;
}

std::optional<data::Normalization> protocol_normalization(const std::string& protocol, int64_t channels) {
  if (protocol != "paper") return std::nullopt;
  data::Normalization n;
  n.mean.assign(static_cast<size_t>(channels), 0.5);
  n.std.assign(static_cast<size_t>(channels), 0.5);
  return n;
}

void select_training_data(data::Split& split, const TrainOptions& options) {
  if (options.train_subset < 0) throw Error("--train-subset must not be negative");
  if (options.train_subset > 0 && options.train_subset < split.train.size())
    split.train = split.train.head(options.train_subset);
  if (options.val_fraction != 0.0) {
    auto [kept, held] = data::hold_out(split.train, options.val_fraction, options.val_seed);
    split.train = std::move(kept);
    split.validation = std::move(held);
  }
}

}  // namespace was
