#include <algorithm>
#include <mutex>
#include <set>

#include "was/core/error.h"
#include "was/models/classifier.h"
#include "was/models/efficientnet_lite.h"
#include "was/models/googlenet.h"
#include "was/models/mobilenetv2.h"
#include "was/models/resnet.h"
#include "was/models/small_cnn.h"
#include "was/models/vgg.h"
#include "was/nn/layers.h"

namespace was::models {
namespace {

// The convolutions of `model` whose module name `pick` accepts, in module order.
std::vector<std::string> conv_names(const ClassifierImpl& model, const std::function<bool(const std::string&)>& pick) {
  std::vector<std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (dynamic_cast<const torch::nn::Conv2dImpl*>(item.value().get()) != nullptr && pick(item.key()))
      names.push_back(item.key());
  return names;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A `_paper` model: the released code's architecture, and the layers it transforms.
template <typename Build>
ModelFactory released(Build build, std::function<bool(const std::string&)> transformed) {
  return [build, transformed](const ModelConfig& c) -> std::shared_ptr<ClassifierImpl> {
    std::shared_ptr<ClassifierImpl> model = build(c);
    model->set_paper_layers(conv_names(*model, transformed));
    return model;
  };
}

void register_released_code_models(std::map<std::string, ModelFactory>& factories) {
  // vgg_1d.py / vgg_2d.py: 4096-4096 classifier with dropout, biased convs;
  // the first conv of each of the first four stages stays plain (9 of 13).
  factories["vgg16_paper"] = released(
      [](const ModelConfig& c) {
        return std::make_shared<VggImpl>(vgg16_widths(), c,
                                         VggOptions().classifier_hidden(4096).conv_bias(true).torchvision_init(false));
      },
      [](const std::string& name) {
        static const std::set<std::string> plain = {"features.0", "features.7", "features.14", "features.24"};
        return plain.count(name) == 0;
      });
  // resnet_2d.py: 3x3 projection shortcuts; both convs of every block (stem and shortcuts plain).
  const auto resnet_blocks = [](const std::string& name) {
    return name.rfind("layer", 0) == 0 && (ends_with(name, ".conv1") || ends_with(name, ".conv2"));
  };
  const auto resnet_options = ResNetOptions().shortcut_kernel(3).kaiming_init(false);
  factories["resnet18_paper"] = released(
      [resnet_options](const ModelConfig& c) {
        return std::make_shared<ResNetImpl>(std::vector<int64_t>{2, 2, 2, 2}, c, resnet_options);
      },
      resnet_blocks);
  factories["resnet34_paper"] = released(
      [resnet_options](const ModelConfig& c) {
        return std::make_shared<ResNetImpl>(std::vector<int64_t>{3, 4, 6, 3}, c, resnet_options);
      },
      resnet_blocks);
  // googlenet.py: the 3x3 of branch 2 and the 5x5 of branch 3 of every block.
  factories["googlenet_paper"] = released(
      [](const ModelConfig& c) { return std::make_shared<GoogLeNetImpl>(c, GoogLeNetOptions().released_code(true)); },
      [](const std::string& name) { return ends_with(name, ".branch2.1.conv") || ends_with(name, ".branch3.1.conv"); });
  // mobilenetv2.py and effnetv2.py: only the depthwise convolutions.
  const auto depthwise = [](const std::string& name) { return ends_with(name, ".depthwise"); };
  factories["mobilenetv2_paper"] = released(
      [](const ModelConfig& c) {
        return std::make_shared<MobileNetV2Impl>(c, MobileNetV2Options().released_code(true));
      },
      depthwise);
  factories["efficientnet_lite0_paper"] = released(
      [](const ModelConfig& c) {
        return std::make_shared<EfficientNetLiteImpl>(c, EfficientNetLiteOptions::imagenet().released_code(true));
      },
      depthwise);
}

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
    reg->factories["resnet20"] = [](const ModelConfig& c) { return std::make_shared<CifarResNetImpl>(20, c); };
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
    register_released_code_models(reg->factories);
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
