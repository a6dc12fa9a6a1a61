#include <algorithm>
#include <mutex>

#include "was/error.h"
#include "was/nn/compact.h"
#include "was/models/classifier.h"
#include "was/models/efficientnet_lite.h"
#include "was/models/googlenet.h"
#include "was/models/mobilenetv2.h"
#include "was/models/resnet.h"
#include "was/models/small_cnn.h"
#include "was/models/vgg.h"

namespace was::models {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelFactory> factories;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    reg->factories["small_cnn"] = [](const ModelConfig& c) { return std::make_shared<SmallCnnImpl>(c); };
    reg->factories["small_cnn_plain"] = [](const ModelConfig& c) { return std::make_shared<SmallCnnImpl>(c, false); };
    reg->factories["resnet18"] = [](const ModelConfig& c) {
      return std::make_shared<ResNetImpl>(std::vector<int64_t>{2, 2, 2, 2}, c);
    };
    reg->factories["resnet34"] = [](const ModelConfig& c) {
      return std::make_shared<ResNetImpl>(std::vector<int64_t>{3, 4, 6, 3}, c);
    };
    // The paper's CIFAR zoo (WAS-SPEC §7); docs/MODELS.md gives their sizes.
    reg->factories["vgg16"] = [](const ModelConfig& c) { return std::make_shared<VggImpl>(vgg16_widths(), c); };
    reg->factories["googlenet"] = [](const ModelConfig& c) { return std::make_shared<GoogLeNetImpl>(c); };
    reg->factories["mobilenetv2"] = [](const ModelConfig& c) { return std::make_shared<MobileNetV2Impl>(c); };
    reg->factories["efficientnet_lite0"] = [](const ModelConfig& c) {
      return std::make_shared<EfficientNetLiteImpl>(c);
    };
    return reg;
  }();
  return *r;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs_by_layout(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, std::string>> pairs;
  const auto modules = model.named_modules("", /*include_self=*/false);
  auto is_conv = [](const torch::nn::Module* m) { return dynamic_cast<const torch::nn::Conv2dImpl*>(m) != nullptr; };
  auto is_bn = [](const torch::nn::Module* m) {
    return dynamic_cast<const torch::nn::BatchNorm2dImpl*>(m) != nullptr ||
           dynamic_cast<const was::FoldableBatchNorm2dImpl*>(m) != nullptr;
  };
  for (const auto& item : modules) {
    if (!is_conv(item.value().get())) continue;
    const std::string& name = item.key();
    const auto dot = name.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : name.substr(0, dot + 1);
    const std::string leaf = name.substr(prefix.size());
    std::string partner = name + "_bn";  // depthwise -> depthwise_bn
    if (!modules.find(partner) && leaf.rfind("conv", 0) == 0) {
      partner = prefix + "bn" + leaf.substr(4);  // conv1 -> bn1
    } else if (!modules.find(partner) && !leaf.empty() && std::all_of(leaf.begin(), leaf.end(), ::isdigit)) {
      partner = prefix + std::to_string(std::stoll(leaf) + 1);  // Sequential: i -> i+1
    }
    const auto* bn = partner.empty() ? nullptr : modules.find(partner);
    if (bn != nullptr && is_bn(bn->get())) pairs.emplace_back(name, partner);
  }
  return pairs;
}

void register_model(const std::string& name, ModelFactory factory) {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.factories[name] = std::move(factory);
}

std::vector<std::string> model_names() {
  auto& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  std::vector<std::string> names;
  for (const auto& [name, _] : reg.factories) names.push_back(name);
  return names;
}

std::shared_ptr<ClassifierImpl> create_model(const ModelConfig& config) {
  ModelFactory factory;
  {
    auto& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mutex);
    auto it = reg.factories.find(config.name);
    if (it != reg.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown model '" + config.name + "'", "known models: " + known);
  }
  if (config.num_classes < 1 || config.in_channels < 1)
    throw Error("model '" + config.name + "' needs at least 1 class and 1 input channel, got " +
                std::to_string(config.num_classes) + " classes, " + std::to_string(config.in_channels) + " channels");
  return factory(config);
}

}  // namespace was::models
