// The common face of the model zoo: an image classifier built by name.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  /// Each convolution whose output goes only into the BatchNorm named beside
  /// it (module names), so that an inference export can fold the BatchNorm
  /// into the convolution. Empty: nothing is folded.
  virtual std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const { return {}; }
  /// The convolutions (module names) the authors' released code transforms,
  /// for the `_paper` models: a paper-family policy transforms exactly these
  /// (WAS-SPEC §8). nullopt: every convolution larger than 1x1 (§2).
  const std::optional<std::vector<std::string>>& paper_layers() const { return paper_layers_; }
  void set_paper_layers(std::vector<std::string> names) { paper_layers_ = std::move(names); }

 private:
  std::optional<std::vector<std::string>> paper_layers_;
};

/// The conv-BN pairs of a model laid out as the zoo lays them out: a
/// convolution `X` with a sibling `X_bn`, a convolution `PREFIXconvN` with a
/// sibling `PREFIXbnN`, or a Conv2d directly followed by a BatchNorm2d in a
/// Sequential. A model may return this
/// from conv_batchnorm_pairs() only if each such convolution feeds nothing but
/// its BatchNorm (the export tests check equality of outputs per model).
std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs_by_layout(const torch::nn::Module& model);

/// ReLU6. LibTorch 1.13 has no bfloat16 backward for hardtanh (which relu6
/// is) on the CPU; under bfloat16 autocast the same function runs as a clamp.
inline torch::Tensor relu6_bf16_safe(const torch::Tensor& x) {
  return x.scalar_type() == torch::kBFloat16 ? x.clamp(0.0, 6.0) : torch::nn::functional::relu6(x);
}

using ModelFactory = std::function<std::shared_ptr<ClassifierImpl>(const ModelConfig&)>;

/// Builds a model by name; an unknown name throws was::Error listing the known ones.
std::shared_ptr<ClassifierImpl> create_model(const ModelConfig& config);
/// The registered names, sorted.
std::vector<std::string> model_names();
/// Adds a model to the registry (the zoo registers itself; users may add theirs).
void register_model(const std::string& name, ModelFactory factory);

}  // namespace was::models
