// ResNet for 32x32 inputs (He et al., 2016, "Deep Residual Learning", §4.2
// style): 3x3 stride-1 stem, no max-pool, four stages of BasicBlocks with
// widths 64-512, global average pool, one linear layer.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/compact.h"

namespace was::models {

struct ResNetOptions {
  /// Kernel of the projection shortcut: 1 (He et al.), or 3 as in the WAS
  /// authors' released code (resnet_2d.py), which is where the paper's 608 M
  /// and 1214 M MACs come from (docs/MODELS.md).
  TORCH_ARG(int64_t, shortcut_kernel) = 1;
  /// torchvision's Kaiming-normal (fan-out) convolutions; false: LibTorch's
  /// (= PyTorch's) default initialisation, as the released code has.
  TORCH_ARG(bool, kaiming_init) = true;
};

/// Two 3x3 convolutions with BatchNorm and an identity or projection shortcut.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, int64_t shortcut_kernel = 1);
  torch::Tensor forward(torch::Tensor x);

 private:
  CompactableConv2d conv1{nullptr}, conv2{nullptr};
  FoldableBatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential shortcut{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public ClassifierImpl {
 public:
  /// `blocks`: BasicBlocks per stage, {2,2,2,2} for ResNet-18, {3,4,6,3} for ResNet-34.
  ResNetImpl(std::vector<int64_t> blocks, const ModelConfig& config, ResNetOptions options = {});
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

 private:
  torch::nn::Sequential make_stage(int64_t& in_planes, int64_t planes, int64_t blocks, int64_t stride,
                                   int64_t shortcut_kernel);

  CompactableConv2d conv1{nullptr};
  FoldableBatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace was::models
