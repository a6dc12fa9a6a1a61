#include "was/io/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "was/core/atomic_file.h"
#include "was/core/error.h"
#include "was/core/verified_archive.h"
#include "was/nn/batchnorm_fold.h"
#include "was/nn/compact.h"
#include "was/nn/layers.h"

namespace was {
namespace fs = std::filesystem;
namespace {

constexpr const char* kExportKind = "was-inference";
constexpr const char* kExportMetaKey = "was_export_meta";

void write_bytes_atomic(const std::string& path, const std::vector<char>& bytes) {
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  write_file_atomically(path, bytes.data(), bytes.size(), "state dict");
}

// An export never replaces a run: its checkpoint holds the optimiser state,
// the history and every mode's statistics, which no export keeps.
void refuse_to_replace_a_checkpoint(const std::string& path) {
  if (!fs::is_regular_file(path)) return;
  bool is_checkpoint = false;
  try {
    read_run_state(path);
    is_checkpoint = true;
  } catch (const Error&) {
  }
  if (is_checkpoint)
    throw Error("'" + path + "' is a training checkpoint: writing the export over it would lose the run",
                "choose another --out, e.g. " + (fs::path(path).parent_path() / "model.was").string() +
                    ", or pass --force to replace it");
}

std::string hint(const std::string& path) {
  return "write it again with `was export CHECKPOINT --mode aom|dom --out " + path + "`";
}

}  // namespace

namespace {

// The export of `options.mode`, as export_inference writes it to a file.
torch::serialize::OutputArchive inference_archive(Network& network, const RunRecord& state,
                                                  const ExportOptions& options) {
  torch::NoGradGuard no_grad;
  if (options.mode.is_dom() && !network.shadow().enabled())
    throw Error("this network was trained without WAS (policy none): it has no DOM", "export it with --mode aom");
  network.set_mode(options.mode);
  auto& net = network.module();

  // The tensors each module computes with in this mode: a DOM convolution's
  // `weight` is its shadow tensor, not the registered W.
  std::map<std::string, torch::Tensor> tensors;
  // The paper family's gain is folded into the DOM weights below and has no
  // place in AOM: an inference model carries none.
  const std::string gain_suffix = std::string(".") + kShadowGainName;
  for (const auto& p : net.named_parameters())
    if (p.key().size() < gain_suffix.size() ||
        p.key().compare(p.key().size() - gain_suffix.size(), gain_suffix.size(), gain_suffix) != 0)
      tensors[p.key()] = p.value();
  for (const auto& b : net.named_buffers()) tensors[b.key()] = b.value();
  auto modules = net.named_modules("", false);
  for (const auto& m : modules)
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m.value().get())) tensors[m.key() + ".weight"] = conv->weight;

  std::vector<std::string> folded;
  if (options.fold_batchnorm) {
    for (const auto& [conv_name, bn_name] : net.conv_batchnorm_pairs()) {
      auto* conv = modules.find(conv_name) ? dynamic_cast<torch::nn::Conv2dImpl*>(modules[conv_name].get()) : nullptr;
      auto* bn = modules.find(bn_name) ? dynamic_cast<FoldableBatchNorm2dImpl*>(modules[bn_name].get()) : nullptr;
      if (conv == nullptr || bn == nullptr) continue;  // not foldable here: kept as a BatchNorm
      auto [w, b] = fold_batchnorm(conv->weight, conv->bias, *bn);
      tensors[conv_name + ".weight"] = w;
      tensors[conv_name + ".bias"] = b;
      folded.push_back(bn_name);
    }
  }

  nlohmann::json meta = {{"kind", kExportKind},
                         {"version", kExportVersion},
                         {"model", state.to_json()["model"]},
                         {"mode", options.mode.key()},
                         {"policy", state.policy},
                         {"dataset", state.dataset},
                         {"class_names", state.class_names},
                         {"normalization", {{"mean", state.normalization.mean}, {"std", state.normalization.std}}},
                         {"folded_batchnorms", folded}};
  std::vector<std::string> names;
  torch::serialize::OutputArchive archive;
  for (const auto& [name, t] : tensors) {
    archive.write("t" + std::to_string(names.size()), t.detach().contiguous().cpu());
    names.push_back(name);
  }
  meta["tensors"] = names;
  archive.write(kExportMetaKey, c10::IValue(meta.dump()));
  network.set_mode(Mode::aom());
  return archive;
}

InferenceModel read_inference_archive(torch::serialize::InputArchive& archive, const std::string& path,
                                      torch::Device device, bool compact, const std::optional<Mode>& expect_mode);

}  // namespace

void export_inference(const std::string& path, Network& network, const RunRecord& state, const ExportOptions& options) {
  if (!options.replace_checkpoint) refuse_to_replace_a_checkpoint(path);
  auto archive = inference_archive(network, state, options);
  write_archive_atomically(path, archive, "inference file");
}

InferenceModel make_inference_model(Network& network, const RunRecord& state, const ExportOptions& options,
                                    torch::Device device, bool compact) {
  std::stringstream bytes;
  inference_archive(network, state, options).save_to(bytes);
  torch::serialize::InputArchive archive;
  archive.load_from(bytes);
  return read_inference_archive(archive, "(in memory)", device, compact, std::nullopt);
}

std::vector<std::string> compact_convolutions(models::ClassifierImpl& net, std::vector<std::string>* dense) {
  std::vector<std::string> done;
  for (const auto& m : net.named_modules("", false)) {
    auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m.value().get());
    if (conv == nullptr || (conv->weight.size(2) == 1 && conv->weight.size(3) == 1)) continue;
    auto* compactable = dynamic_cast<CompactableConv2dImpl*>(conv);
    std::string why_dense;
    auto plan = plan_compaction(*conv, conv->weight, conv->bias, 8, &why_dense);
    const std::string dense_shape = std::to_string(conv->weight.size(2)) + "x" + std::to_string(conv->weight.size(3));
    if (!plan) {
      if (dense) dense->push_back(m.key() + ": " + dense_shape + " (" + why_dense + ")");
      continue;
    }
    if (compactable == nullptr) {
      if (dense) dense->push_back(m.key() + ": " + dense_shape + " (a plain torch::nn::Conv2d cannot run a plan)");
      continue;
    }
    done.push_back(m.key() + ": " + dense_shape + " -> " + plan->describe());
    compactable->set_plan(std::move(plan));
  }
  return done;
}

InferenceModel load_inference(const std::string& path, torch::Device device, bool compact,
                              const std::optional<Mode>& expect_mode) {
  torch::serialize::InputArchive archive = read_verified_archive(path, "inference file", hint(path));
  return read_inference_archive(archive, path, device, compact, expect_mode);
}

namespace {

InferenceModel read_inference_archive(torch::serialize::InputArchive& archive, const std::string& path,
                                      torch::Device device, bool compact, const std::optional<Mode>& expect_mode) {
  c10::IValue meta_value;
  if (!archive.try_read(kExportMetaKey, meta_value) || !meta_value.isString())
    throw Error("'" + path + "' is not a was inference export", hint(path));
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_value.toStringRef());
  } catch (const std::exception&) {
    throw Error("inference file '" + path + "' has corrupt metadata", hint(path));
  }
  if (meta.value("kind", "") != kExportKind) throw Error("'" + path + "' is not a was inference export", hint(path));
  if (meta.value("version", 0) != kExportVersion)
    throw Error("inference file '" + path + "' has version " + std::to_string(meta.value("version", 0)) +
                    ", this build reads " + std::to_string(kExportVersion),
                hint(path));

  InferenceModel im;
  try {
    RunRecord s = RunRecord::from_json(nlohmann::json{{"model", meta.at("model")},
                                                      {"policy", meta.at("policy")},
                                                      {"seed", 0},
                                                      {"dom_seed", 0},
                                                      {"dataset", meta.at("dataset")},
                                                      {"normalization", meta.at("normalization")},
                                                      {"train_options", nlohmann::json::object()},
                                                      {"epoch", 0},
                                                      {"batch", 0},
                                                      {"step", 0},
                                                      {"finished", true},
                                                      {"history", nlohmann::json::array()},
                                                      {"results", nlohmann::json::object()}});
    im.model = s.model;
    im.policy = s.policy;
    im.normalization = s.normalization;
    im.mode = Mode::parse(meta.at("mode").get<std::string>());
    im.class_names = meta.value("class_names", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    throw Error("inference file '" + path + "' has incomplete metadata: " + e.what(), hint(path));
  }
  if (expect_mode && !(*expect_mode == im.mode))
    throw Error(
        "inference file '" + path + "' holds mode " + im.mode.key() + ", not the requested " + expect_mode->key(),
        "export the mode you want, or drop the mode option");

  im.net = models::create_model(im.model);
  auto params = im.net->named_parameters();
  auto buffers = im.net->named_buffers();
  auto modules = im.net->named_modules("", false);
  const auto names = meta.at("tensors").get<std::vector<std::string>>();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < names.size(); ++i) {
    torch::Tensor t;
    if (!archive.try_read("t" + std::to_string(i), t))
      throw Error("inference file '" + path + "' lacks tensor '" + names[i] + "'", hint(path));
    const auto& name = names[i];
    torch::Tensor* target = params.find(name);
    if (target == nullptr) target = buffers.find(name);
    if (target != nullptr) {
      if (!target->sizes().equals(t.sizes()))
        throw Error("inference file '" + path + "': '" + name + "' has the wrong shape for " + im.model.name,
                    hint(path));
      target->copy_(t);
      continue;
    }
    // A folded bias of a convolution built without one.
    const auto dot = name.rfind('.');
    const std::string owner = dot == std::string::npos ? "" : name.substr(0, dot);
    auto* conv = modules.find(owner) ? dynamic_cast<torch::nn::Conv2dImpl*>(modules[owner].get()) : nullptr;
    if (conv == nullptr || name.substr(dot + 1) != "bias" || t.dim() != 1 || t.size(0) != conv->weight.size(0))
      throw Error("inference file '" + path + "' has tensor '" + name + "', which " + im.model.name + " lacks",
                  hint(path));
    conv->bias = t;
  }
  for (const auto& bn_name : meta.value("folded_batchnorms", std::vector<std::string>{})) {
    auto* bn = modules.find(bn_name) ? dynamic_cast<FoldableBatchNorm2dImpl*>(modules[bn_name].get()) : nullptr;
    if (bn == nullptr) throw Error("inference file '" + path + "' folds '" + bn_name + "', which the model lacks");
    bn->set_folded(true);
    im.folded = true;
  }
  im.net->to(device);
  // Folded biases were set as plain members: move them too.
  for (const auto& m : im.net->named_modules("", false))
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m.value().get()))
      if (conv->bias.defined()) conv->bias = conv->bias.to(device);
  im.net->eval();
  if (compact) im.compacted = compact_convolutions(*im.net, &im.dense);
  return im;
}

}  // namespace

ChosenInference load_inference_fastest(const std::string& path, torch::Device device, bool compact,
                                       const std::optional<Mode>& expect_mode, int64_t batch, int threads,
                                       const SpeedCache* cache, const std::function<void(const std::string&)>& warn) {
  InferenceModel nchw = load_inference(path, device, compact, expect_mode);
  const SpeedKey key{"predict",    nchw.model.name + " " + nchw.mode.key() + (compact ? " compact" : " dense"),
                     batch,        threads,
                     device.str(), ""};
  std::optional<InferenceModel> channels_last;
  const auto images = torch::randint(
      0, 256, {std::max<int64_t>(batch, 1), nchw.model.in_channels, nchw.model.image_size, nchw.model.image_size},
      torch::TensorOptions().dtype(torch::kUInt8));
  const auto prepare = [&] {
    channels_last.emplace(load_inference(path, device, compact, expect_mode));
    channels_last->use_channels_last();
  };
  const auto predict = [&](const SpeedSettings& s) {
    (s.channels_last ? *channels_last : nchw).predict(images);
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  SpeedChoice choice = choose_speed_settings_by_running(key, {SpeedSettings{false, false}, SpeedSettings{true, false}},
                                                        prepare, predict, 3, cache, warn);
  if (!choice.settings.channels_last) return {std::move(nchw), choice};
  if (!channels_last) {
    channels_last.emplace(std::move(nchw));
    channels_last->use_channels_last();
  }
  return {std::move(*channels_last), choice};
}

torch::Tensor InferenceModel::predict(const torch::Tensor& images_u8) {
  torch::NoGradGuard no_grad;
  if (images_u8.dim() != 4 || images_u8.size(1) != model.in_channels || images_u8.size(2) != model.image_size ||
      images_u8.size(3) != model.image_size)
    throw Error("images of shape " + c10::str(images_u8.sizes()) + " do not fit the model, which takes " +
                    std::to_string(model.in_channels) + "x" + std::to_string(model.image_size) + "x" +
                    std::to_string(model.image_size),
                "resize the images or use a model trained at that size");
  torch::Device device = torch::kCPU;
  for (const auto& p : net->parameters()) {
    device = p.device();
    break;
  }
  const auto x = data::normalize(images_u8, normalization, device);
  return net->forward(channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x);
}

void InferenceModel::use_channels_last() {
  torch::NoGradGuard no_grad;
  const auto cl = torch::MemoryFormat::ChannelsLast;
  for (const auto& mod : net->modules(false))
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(mod.get())) {
      conv->weight.set_data(conv->weight.contiguous(cl));
      if (auto* c = dynamic_cast<CompactableConv2dImpl*>(conv); c && c->plan()) {
        auto plan = *c->plan();
        for (auto& part : plan.parts) part.weight = part.weight.contiguous(cl);
        c->set_plan(plan);
      }
    }
  channels_last = true;
}

void write_pytorch_state_dict(const std::string& path, Network& network, const Mode& bn_mode, bool replace_checkpoint) {
  if (!replace_checkpoint) refuse_to_replace_a_checkpoint(path);
  torch::NoGradGuard no_grad;
  network.set_mode(bn_mode);
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& p : network.module().named_parameters()) dict.insert(p.key(), p.value().detach().contiguous().cpu());
  for (const auto& b : network.module().named_buffers()) dict.insert(b.key(), b.value().detach().contiguous().cpu());
  write_bytes_atomic(path, torch::pickle_save(c10::IValue(dict)));
  network.set_mode(Mode::aom());
}

std::vector<std::pair<std::string, torch::Tensor>> read_pytorch_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFoundError("state dict '" + path + "' does not exist");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception&) {
    throw Error("state dict '" + path + "' is not readable (truncated or corrupt?)");
  }
  if (!value.isGenericDict()) throw Error("'" + path + "' does not hold a state dict");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : value.toGenericDict()) out.emplace_back(item.key().toStringRef(), item.value().toTensor());
  return out;
}

}  // namespace was
