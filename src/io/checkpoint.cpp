#include "was/io/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "was/core/atomic_file.h"
#include "was/core/error.h"

namespace was {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCheckpointMetaKey = "was_meta";

std::string hint_for(const std::string& path) {
  return "check the path, or train again with `was train --out DIR` (checkpoint: " + path + ")";
}

torch::serialize::InputArchive open_archive(const std::string& path, torch::Device device) {
  if (!fs::exists(path)) throw Error("checkpoint '" + path + "' does not exist", hint_for(path));
  if (fs::is_directory(path)) {
    throw Error("checkpoint '" + path + "' is a directory",
                "pass the file, e.g. " + (fs::path(path) / "last.pt").string());
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const std::exception&) {
    throw Error("checkpoint '" + path + "' is not a readable checkpoint (truncated or corrupt file?)", hint_for(path));
  }
  return archive;
}

RunState read_state(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue meta;
  if (!archive.try_read(kCheckpointMetaKey, meta) || !meta.isString())
    throw Error("'" + path + "' is a torch archive but not a was checkpoint (no run metadata)", hint_for(path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(meta.toStringRef());
  } catch (const std::exception& e) {
    throw Error("checkpoint '" + path + "' has corrupt metadata: " + e.what(), hint_for(path));
  }
  const int version = j.value("version", 0);
  if (version != kCheckpointVersion)
    throw Error("checkpoint '" + path + "' has format version " + std::to_string(version) + ", this build reads " +
                    std::to_string(kCheckpointVersion),
                "use the was version that wrote it");
  try {
    return RunState::from_json(j);
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + path + "' has incomplete metadata: " + e.what(), hint_for(path));
  }
}

}  // namespace

nlohmann::json RunState::to_json() const {
  return {{"version", kCheckpointVersion},
          {"model",
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
          {"train_options", train_options},
          {"epoch", epoch},
          {"batch", batch},
          {"step", step},
          {"finished", finished},
          {"history", history},
          {"results", results},
          {"dom_profiles", dom_profiles}};
}

Mode profile_mode(const RunState& state, const std::string& name) {
  std::string names;
  for (const auto& p : state.dom_profiles) {
    if (p.value("name", "") == name) return Mode::parse(p.at("mode").get<std::string>());
    names += (names.empty() ? "" : ", ") + p.value("name", "");
  }
  throw Error("the run has no DOM profile named '" + name + "'",
              names.empty() ? "create one with was dom-search" : "its profiles: " + names);
}

RunState RunState::from_json(const nlohmann::json& j) {
  RunState s;
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
  s.train_options = j.at("train_options");
  s.epoch = j.at("epoch").get<int64_t>();
  s.batch = j.at("batch").get<int64_t>();
  s.step = j.at("step").get<int64_t>();
  s.finished = j.at("finished").get<bool>();
  s.history = j.at("history");
  s.results = j.at("results");
  s.dom_profiles = j.value("dom_profiles", nlohmann::json::array());
  return s;
}

void save_checkpoint(const std::string& path, Network& network, const RunState& state,
                     torch::optim::Optimizer* optimizer) {
  nlohmann::json meta = state.to_json();
  meta["batchnorm_modes"] = network.batchnorm().keys();
  meta["has_optimizer"] = optimizer != nullptr;

  torch::serialize::OutputArchive archive;
  archive.write(kCheckpointMetaKey, c10::IValue(meta.dump()));
  torch::serialize::OutputArchive model_archive;
  {
    // Save W, never a shadow tensor: the registered parameters are W.
    network.module().save(model_archive);
  }
  archive.write("model", model_archive);
  torch::serialize::OutputArchive bn_archive;
  network.batchnorm().save(bn_archive);
  archive.write("batchnorm", bn_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    archive.write("optimizer", opt_archive);
  }
  archive.write("rng_cpu", torch::globalContext().defaultGenerator(torch::kCPU).get_state());

  write_archive_atomically(path, archive, "checkpoint");
}

Checkpoint load_checkpoint(const std::string& path, torch::Device device) {
  auto archive = std::make_shared<torch::serialize::InputArchive>(open_archive(path, device));
  Checkpoint ckpt;
  ckpt.path = path;
  ckpt.state = read_state(*archive, path);
  c10::IValue meta_value;
  archive->read(kCheckpointMetaKey, meta_value);
  const auto meta = nlohmann::json::parse(meta_value.toStringRef());

  Policy policy = Policy::parse(ckpt.state.policy);
  ckpt.network = std::make_unique<Network>(ckpt.state.model, policy, ckpt.state.seed);
  const auto mismatch = [&](const std::string& what) {
    return Error("checkpoint '" + path + "' does not match its model '" + ckpt.state.model.name + "': " + what,
                 hint_for(path));
  };
  // LibTorch's Module::load adopts whatever shape it reads: record the
  // expected shapes first and compare after.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : ckpt.network->module().named_parameters())
    expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : ckpt.network->module().named_buffers()) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    torch::serialize::InputArchive model_archive;
    archive->read("model", model_archive);
    ckpt.network->module().load(model_archive);
  } catch (const std::exception&) {
    throw mismatch("missing weights");
  }
  auto params = ckpt.network->module().named_parameters();
  auto buffers = ckpt.network->module().named_buffers();
  for (const auto& [name, shape] : expected) {
    const torch::Tensor* t = params.find(name);
    if (t == nullptr) t = buffers.find(name);
    if (t == nullptr || t->sizes().vec() != shape) throw mismatch("'" + name + "' has the wrong shape");
  }
  ckpt.network->to(device);
  torch::serialize::InputArchive bn_archive;
  if (!archive->try_read("batchnorm", bn_archive)) throw Error("checkpoint '" + path + "' lacks BatchNorm statistics");
  ckpt.network->batchnorm().load(bn_archive, meta.value("batchnorm_modes", std::vector<std::string>{}));
  ckpt.has_optimizer = meta.value("has_optimizer", false);
  torch::Tensor rng;
  if (archive->try_read("rng_cpu", rng)) {
    at::Generator gen = torch::globalContext().defaultGenerator(torch::kCPU);  // a handle to the global one
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng.cpu());
  }
  ckpt.network->set_mode(Mode::aom());
  ckpt.archive = archive;
  return ckpt;
}

void Checkpoint::restore_optimizer(torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive opt_archive;
  if (!has_optimizer || !archive->try_read("optimizer", opt_archive))
    throw Error("checkpoint '" + path + "' holds no optimiser state, so it cannot be resumed",
                "resume from a checkpoint written during training (e.g. DIR/last.pt)");
  try {
    optimizer.load(opt_archive);
  } catch (const std::exception&) {
    throw Error("checkpoint '" + path + "' has an optimiser state that does not match the model", hint_for(path));
  }
}

RunState read_run_state(const std::string& path) {
  auto archive = open_archive(path, torch::kCPU);
  return read_state(archive, path);
}

}  // namespace was
