#include "was/io/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/verified_archive.h"

namespace was {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCheckpointMetaKey = "was_meta";

std::string hint_for(const std::string& path) {
  return "check the path, or train again with `was train --out DIR` (checkpoint: " + path + ")";
}

torch::serialize::InputArchive open_archive(const std::string& path, torch::Device device) {
  if (std::filesystem::is_directory(path)) {
    throw Error("checkpoint '" + path + "' is a directory",
                "pass the file, e.g. " + (fs::path(path) / "last.pt").string());
  }
  return read_verified_archive(path, "checkpoint", hint_for(path), device);
}

RunRecord read_state(torch::serialize::InputArchive& archive, const std::string& path) {
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
  RunRecord record;
  try {
    record = RunRecord::from_json(j);
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + path + "' has incomplete metadata: " + e.what(), hint_for(path));
  } catch (const Error& e) {
    throw Error("checkpoint '" + path + "' has malformed metadata: " + e.what(), hint_for(path));
  }
  try {
    record.validate();
  } catch (const Error& e) {
    throw Error("checkpoint '" + path + "' holds an inconsistent run record: " + e.what(), hint_for(path));
  }
  return record;
}

}  // namespace

void save_checkpoint(const std::string& path, Network& network, const RunRecord& state,
                     torch::optim::Optimizer* optimizer) {
  nlohmann::json meta = state.to_json();
  meta["version"] = kCheckpointVersion;
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

RunRecord read_run_state(const std::string& path) {
  auto archive = open_archive(path, torch::kCPU);
  return read_state(archive, path);
}

}  // namespace was
