// A small, fast CNN for tests and the demo: three 3x3 conv-BN-ReLU stages
// (32, 64, 128 channels) with 2x2 max-pools, global average pool, linear.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

class SmallCnnImpl : public ClassifierImpl {
 public:
  /// `batchnorm` false ("small_cnn_plain") gives biased convolutions and no
  /// BatchNorm: a model whose training step does not depend on how a batch
  /// is split, for data-parallel equivalence tests.
  explicit SmallCnnImpl(const ModelConfig& config, bool batchnorm = true);
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

 private:
  CompactableConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  FoldableBatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(SmallCnn);

}  // namespace was::models
