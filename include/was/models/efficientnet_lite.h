// EfficientNet-Lite0 for 32x32 inputs. EfficientNet-B0 (Tan & Le, 2019,
// "EfficientNet: Rethinking Model Scaling", Table 1) as the Lite variants of
// tensorflow/tpu's efficientnet/lite change it for mobile accelerators:
// no squeeze-and-excitation, ReLU6 in place of swish, and the stem (32) and
// head (1280) fixed rather than scaled. Lite0 is scaled 1.0 x 1.0, so its
// stages are B0's: MBConv blocks with depthwise kernels of 3 or 5.
//
// CIFAR strides: the ImageNet network halves its input five times (224 -> 7,
// so 32 -> 1); the common CIFAR form sets the stem's stride to 1 and keeps
// the stages' strides (1, 2, 2, 2, 1, 2, 1), so 32x32 ends at 2x2. The
// paper's 8.00 M FLOPs is within 2% of the ImageNet strides' figure instead
// (docs/MODELS.md).
// No dropout and no stochastic depth (B0 and Lite0 train with both): the
// paper's protocol names no regulariser besides WAS, and without them a
// training step depends on nothing but the data and WAS's seeded draws.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

struct EfficientNetLiteOptions {
  /// B0's ImageNet strides (stem 2, second stage 2).
  static EfficientNetLiteOptions imagenet() { return EfficientNetLiteOptions().stem_stride(2).stage2_stride(2); }
  /// Stride of the 3x3 stem: 1 in the CIFAR form (default), 2 on ImageNet.
  TORCH_ARG(int64_t, stem_stride) = 1;
  /// Stride of the second stage (16 -> 24 channels): 2 as in B0 (default).
  /// MobileNetV2's CIFAR form sets its counterpart to 1 (docs/MODELS.md).
  TORCH_ARG(int64_t, stage2_stride) = 2;
  /// What the WAS authors' released effnetv2.py adds: BatchNorm momentum 0.01
  /// and eps 1e-3, drop-connect on the skip connections (rate 0.2 * block
  /// index / 7, as its loop computes it), dropout 0.2 before the classifier,
  /// and LibTorch's (= PyTorch's) default initialisation.
  TORCH_ARG(bool, released_code) = false;
};

struct EfficientNetLiteImpl : ClassifierImpl {
  explicit EfficientNetLiteImpl(const ModelConfig& config, EfficientNetLiteOptions options = {});
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

  was::CompactableConv2d stem{nullptr};
  was::FoldableBatchNorm2d stem_bn{nullptr};
  torch::nn::Sequential blocks{nullptr};
  was::CompactableConv2d head{nullptr};
  was::FoldableBatchNorm2d head_bn{nullptr};
  torch::nn::Dropout dropout{nullptr};  ///< released_code only
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(EfficientNetLite);

}  // namespace was::models
