// The common face of the model zoo: an image classifier built by name.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace was::models {

/// What a model needs to be rebuilt from a checkpoint.
struct ModelConfig {
  std::string name = "small_cnn";
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t image_size = 32;  ///< input height = width (used for MACs)
};

/// An image classifier: [N, C, H, W] float -> [N, classes] logits.
class ClassifierImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

using ModelFactory = std::function<std::shared_ptr<ClassifierImpl>(const ModelConfig&)>;

/// Builds a model by name; an unknown name throws was::Error listing the known ones.
std::shared_ptr<ClassifierImpl> create_model(const ModelConfig& config);
/// The registered names, sorted.
std::vector<std::string> model_names();
/// Adds a model to the registry (the zoo registers itself; users may add theirs).
void register_model(const std::string& name, ModelFactory factory);

}  // namespace was::models
