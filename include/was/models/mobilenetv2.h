// MobileNetV2 for 32x32 inputs (Sandler et al., 2018, "MobileNetV2: Inverted
// Residuals and Linear Bottlenecks", Table 2): a 3x3 stem of 32 channels,
// seven stages of inverted residual blocks (widths 16-320), a 1x1 conv to
// 1280, global average pool, one linear layer. ReLU6 and BatchNorm throughout.
//
// CIFAR strides: the ImageNet network halves its input five times (224 -> 7);
// the common CIFAR form sets the stride of the stem and of the second stage
// (24 channels) to 1, so it halves 32x32 three times (-> 4x4). The other
// stages keep the paper's strides (docs/MODELS.md compares the figures).
// No dropout before the classifier (torchvision's has 0.2): the paper's
// protocol names no regulariser besides WAS.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

struct MobileNetV2Options {
  /// The paper's ImageNet strides (stem 2, second stage 2).
  static MobileNetV2Options imagenet() { return MobileNetV2Options().stem_stride(2).stage2_stride(2); }
  /// Stride of the 3x3 stem: 1 in the CIFAR form (default), 2 on ImageNet.
  TORCH_ARG(int64_t, stem_stride) = 1;
  /// Stride of the first block of the second stage (16 -> 24 channels): 1 in
  /// the CIFAR form (default), 2 on ImageNet.
  TORCH_ARG(int64_t, stage2_stride) = 1;
  /// The layout of the WAS authors' released mobilenetv2.py: a 1x1 stem,
  /// strides 2 in stages 2-4 and 1 elsewhere (stem_stride and stage2_stride
  /// are then ignored), an expansion convolution in every block (also at
  /// t = 1), biased convolutions and LibTorch's (= PyTorch's) default
  /// initialisation. Its final 1x1 convolution on the pooled feature is the
  /// linear layer here (the same arithmetic and MACs).
  TORCH_ARG(bool, released_code) = false;
};

struct MobileNetV2Impl : ClassifierImpl {
  explicit MobileNetV2Impl(const ModelConfig& config, MobileNetV2Options options = {});
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

  was::CompactableConv2d stem{nullptr};
  was::FoldableBatchNorm2d stem_bn{nullptr};
  torch::nn::Sequential blocks{nullptr};
  was::CompactableConv2d head{nullptr};
  was::FoldableBatchNorm2d head_bn{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(MobileNetV2);

}  // namespace was::models
