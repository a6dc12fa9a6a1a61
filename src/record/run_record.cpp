#include "was/record/run_record.h"

#include <algorithm>
#include <set>

#include "was/core/error.h"

namespace was {
namespace {

using Json = nlohmann::json;

// The fields an epoch record always has; every other number is an evaluation.
const std::set<std::string>& epoch_fields() {
  static const std::set<std::string> fields = {
      "epoch", "step", "lr", "train_loss", "train_top1", "images_per_s", "seconds", "world_size", "allreduce_seconds"};
  return fields;
}

}  // namespace

std::optional<double> EpochRecord::evaluation(const std::string& name) const {
  const auto it = evaluations.find(name);
  if (it == evaluations.end()) return std::nullopt;
  return it->second;
}

Json EpochRecord::to_json() const {
  Json j = {{"epoch", epoch},
            {"step", step},
            {"lr", lr},
            {"train_loss", train_loss},
            {"train_top1", train_top1},
            {"images_per_s", images_per_s},
            {"seconds", seconds}};
  if (world_size) j["world_size"] = *world_size;
  if (allreduce_seconds) j["allreduce_seconds"] = *allreduce_seconds;
  for (const auto& [name, value] : evaluations) j[name] = value;
  return j;
}

EpochRecord EpochRecord::from_json(const Json& j) {
  EpochRecord e;
  e.epoch = j.at("epoch").get<int64_t>();
  e.step = j.value("step", int64_t{0});
  e.lr = j.value("lr", 0.0);
  e.train_loss = j.value("train_loss", 0.0);
  e.train_top1 = j.value("train_top1", 0.0);
  e.images_per_s = j.value("images_per_s", 0.0);
  e.seconds = j.value("seconds", 0.0);
  if (j.contains("world_size")) e.world_size = j["world_size"].get<int64_t>();
  if (j.contains("allreduce_seconds")) e.allreduce_seconds = j["allreduce_seconds"].get<double>();
  for (const auto& [name, value] : j.items())
    if (!epoch_fields().count(name) && value.is_number()) e.evaluations[name] = value.get<double>();
  return e;
}

Json history_json(const std::vector<EpochRecord>& history) {
  Json out = Json::array();
  for (const auto& e : history) out.push_back(e.to_json());
  return out;
}

Json ModeResult::to_json() const {
  Json j = {{"top1", top1},
            {"loss", loss},
            {"top1_training_bn", top1_training_bn},
            {"batchnorm", batchnorm},
            {"macs", macs},
            {"sparsity_transformed", sparsity_transformed},
            {"sparsity_conv", sparsity_conv}};
  if (val_top1) j["val_top1"] = *val_top1;
  return j;
}

ModeResult ModeResult::from_json(const Json& j) {
  ModeResult r;
  r.top1 = j.at("top1").get<double>();
  r.loss = j.value("loss", 0.0);
  r.top1_training_bn = j.value("top1_training_bn", r.top1);
  r.batchnorm = j.value("batchnorm", std::string("training"));
  if (j.contains("val_top1")) r.val_top1 = j["val_top1"].get<double>();
  r.macs = j.value("macs", int64_t{0});
  r.sparsity_transformed = j.value("sparsity_transformed", 0.0);
  r.sparsity_conv = j.value("sparsity_conv", 0.0);
  return r;
}

const ModeResult* RunResults::mode(const std::string& name) const {
  if (name == "aom") return aom ? &*aom : nullptr;
  if (name == "dom") return dom ? &*dom : nullptr;
  return nullptr;
}

Json RunResults::to_json() const {
  if (empty()) return Json::object();
  Json j = Json::object();
  j["aom"] = aom->to_json();
  if (dom) j["dom"] = dom->to_json();
  if (stochastic_dom)
    j["stochastic_dom"] = {{"running", stochastic_dom->running.to_json()}, {"paper", stochastic_dom->paper.to_json()}};
  j["selection"] = selections_json(selection);
  if (!protocol.empty()) j["protocol"] = protocol;
  j["dom_seed"] = dom_seed;
  j["bn_batches"] = bn_batches;
  if (bn_augmented) j["bn_augmented"] = *bn_augmented;
  if (val_images > 0) j["val_images"] = val_images;
  return j;
}

RunResults RunResults::from_json(const Json& j) {
  RunResults r;
  if (!j.is_object() || !j.contains("aom")) return r;  // not finished
  r.aom = ModeResult::from_json(j.at("aom"));
  if (j.contains("dom")) r.dom = ModeResult::from_json(j["dom"]);
  if (j.contains("stochastic_dom"))
    r.stochastic_dom = StochasticDomResult{RepeatedResult::from_json(j["stochastic_dom"].at("running")),
                                           RepeatedResult::from_json(j["stochastic_dom"].at("paper"))};
  if (j.contains("selection"))
    for (const auto& [curve, s] : j["selection"].items()) r.selection[curve] = EpochSelection::from_json(s);
  r.protocol = j.value("protocol", std::string());
  r.dom_seed = j.value("dom_seed", int64_t{0});
  r.bn_batches = j.value("bn_batches", int64_t{0});
  if (j.contains("bn_augmented")) r.bn_augmented = j["bn_augmented"].get<bool>();
  r.val_images = j.value("val_images", int64_t{0});
  return r;
}

Json DomProfile::to_json() const {
  return {{"name", name},
          {"mode", mode},
          {"objective", objective},
          {"val_top1", val_top1},
          {"aom_val_top1", aom_val_top1},
          {"macs", macs},
          {"aom_macs", aom_macs},
          {"sparsity_transformed", sparsity_transformed}};
}

DomProfile DomProfile::from_json(const Json& j) {
  DomProfile p;
  p.name = j.at("name").get<std::string>();
  p.mode = j.at("mode").get<std::string>();
  p.objective = j.value("objective", std::string());
  p.val_top1 = j.value("val_top1", 0.0);
  p.aom_val_top1 = j.value("aom_val_top1", 0.0);
  p.macs = j.value("macs", int64_t{0});
  p.aom_macs = j.value("aom_macs", int64_t{0});
  p.sparsity_transformed = j.value("sparsity_transformed", 0.0);
  return p;
}

void RunRecord::validate() const {
  options.validate();
  try {
    Policy::parse(policy);
  } catch (const Error& e) {
    throw Error("the run's policy '" + policy + "' does not parse: " + e.what());
  }
  if (epoch < 0 || batch < 0 || step < 0 || dom_seed < 0)
    throw Error("the run's counters are negative (epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) +
                ", step " + std::to_string(step) + ", DOM seed " + std::to_string(dom_seed) + ")");
  if (normalization.mean.size() != normalization.std.size() ||
      std::any_of(normalization.std.begin(), normalization.std.end(), [](double s) { return !(s > 0.0); }))
    throw Error("the run's input normalisation is malformed (one mean and one positive std per channel)");
  for (size_t i = 0; i < history.size(); ++i)
    if (history[i].epoch != int64_t(i) + 1)
      throw Error("the run's history holds epoch " + std::to_string(history[i].epoch) + " at position " +
                  std::to_string(i + 1));
  if (int64_t(history.size()) != epoch)
    throw Error("the run has done " + std::to_string(epoch) + " epochs but records " + std::to_string(history.size()));
  if (finished && results.empty()) throw Error("the run is marked finished but holds no results");
  std::set<std::string> names;
  for (const auto& p : dom_profiles) {
    if (!names.insert(p.name).second) throw Error("the run stores two DOM profiles named '" + p.name + "'");
    try {
      Mode::parse(p.mode);
    } catch (const Error& e) {
      throw Error("DOM profile '" + p.name + "' has the mode '" + p.mode + "', which does not parse: " + e.what());
    }
  }
}

Mode RunRecord::profile_mode(const std::string& name) const {
  std::string names;
  for (const auto& p : dom_profiles) {
    if (p.name == name) return Mode::parse(p.mode);
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw Error("the run has no DOM profile named '" + name + "'",
              names.empty() ? "create one with was dom-search" : "its profiles: " + names);
}

Json RunRecord::to_json() const {
  Json profiles = Json::array();
  for (const auto& p : dom_profiles) profiles.push_back(p.to_json());
  return {{"model",
           {{"name", model.name},
            {"num_classes", model.num_classes},
            {"in_channels", model.in_channels},
            {"image_size", model.image_size}}},
          {"policy", policy},
          {"seed", seed},
          {"dom_seed", dom_seed},
          {"dataset", dataset},
          {"class_names", class_names},
          {"normalization", {{"mean", normalization.mean}, {"std", normalization.std}}},
          {"train_options", options.to_json()},
          {"epoch", epoch},
          {"batch", batch},
          {"step", step},
          {"finished", finished},
          {"history", history_json(history)},
          {"results", results.to_json()},
          {"dom_profiles", profiles}};
}

RunRecord RunRecord::from_json(const Json& j) {
  RunRecord s;
  const auto& m = j.at("model");
  s.model.name = m.at("name").get<std::string>();
  s.model.num_classes = m.at("num_classes").get<int64_t>();
  s.model.in_channels = m.at("in_channels").get<int64_t>();
  s.model.image_size = m.at("image_size").get<int64_t>();
  s.policy = j.at("policy").get<std::string>();
  s.seed = j.at("seed").get<uint64_t>();
  s.dom_seed = j.at("dom_seed").get<int64_t>();
  s.dataset = j.at("dataset").get<std::string>();
  s.class_names = j.value("class_names", std::vector<std::string>{});
  s.normalization.mean = j.at("normalization").at("mean").get<std::vector<double>>();
  s.normalization.std = j.at("normalization").at("std").get<std::vector<double>>();
  s.options = TrainOptions::from_json(j.at("train_options"));
  s.epoch = j.at("epoch").get<int64_t>();
  s.batch = j.at("batch").get<int64_t>();
  s.step = j.at("step").get<int64_t>();
  s.finished = j.at("finished").get<bool>();
  for (const auto& e : j.at("history")) s.history.push_back(EpochRecord::from_json(e));
  s.results = RunResults::from_json(j.at("results"));
  for (const auto& p : j.value("dom_profiles", Json::array())) s.dom_profiles.push_back(DomProfile::from_json(p));
  return s;
}

}  // namespace was
