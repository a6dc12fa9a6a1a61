// ResNet for 32x32 inputs (He et al., 2016, "Deep Residual Learning", §4.2
// style): 3x3 stride-1 stem, no max-pool, four stages of BasicBlocks with
// widths 64-512, global average pool, one linear layer.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/layers.h"

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

/// He et al.'s CIFAR ResNet (2016, §4.2): a 3x3 stem of 16 channels, three
/// stages of n BasicBlocks with 16, 32 and 64 channels (depth 6n + 2:
/// ResNet-20 has n = 3, about 0.27 M parameters and 41 M MACs), global average
/// pool, one linear layer. Shortcuts are option A, as in the paper: identity,
/// and where the shape changes a stride-2 subsample padded with zero channels
/// (no parameters).
class CifarResNetImpl : public ClassifierImpl {
 public:
  CifarResNetImpl(int64_t depth, const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

 private:
  struct BlockImpl : torch::nn::Module {
    BlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
    torch::Tensor forward(torch::Tensor x);
    CompactableConv2d conv1{nullptr}, conv2{nullptr};
    FoldableBatchNorm2d bn1{nullptr}, bn2{nullptr};
    int64_t stride, pad_channels;
  };
  TORCH_MODULE(Block);

  CompactableConv2d conv1{nullptr};
  FoldableBatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(CifarResNet);

}  // namespace was::models
