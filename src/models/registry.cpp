#include <algorithm>
#include <mutex>

#include "was/error.h"
#include "was/models/classifier.h"
#include "was/models/resnet.h"
#include "was/models/small_cnn.h"

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
    reg->factories["resnet18"] = [](const ModelConfig& c) {
      return std::make_shared<ResNetImpl>(std::vector<int64_t>{2, 2, 2, 2}, c);
    };
    reg->factories["resnet34"] = [](const ModelConfig& c) {
      return std::make_shared<ResNetImpl>(std::vector<int64_t>{3, 4, 6, 3}, c);
    };
    return reg;
  }();
  return *r;
}

}  // namespace

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
