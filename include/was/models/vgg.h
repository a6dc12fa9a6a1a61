// VGG-16 with BatchNorm for 32x32 inputs (Simonyan & Zisserman, 2015, "Very
// Deep Convolutional Networks", configuration D; BatchNorm after every
// convolution as in torchvision's vgg16_bn). Thirteen 3x3 conv-BN-ReLU layers
// and five 2x2 max-pools take 32x32 down to a 512 x 1 x 1 feature.
#pragma once

#include <vector>

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

/// The pooling marker in a VGG width table.
constexpr int64_t kVggMaxPool = -1;
/// Configuration D: 64,64,M,128,128,M,256x3,M,512x3,M,512x3,M.
const std::vector<int64_t>& vgg16_widths();

struct VggOptions {
  /// Width of the two hidden layers of the classifier. 0 (default): a single
  /// Linear(512, classes) on the pooled feature, the common CIFAR form (the
  /// feature is already 1x1). 4096: the original three-layer classifier
  /// (Linear-ReLU-Dropout twice, then Linear), whose MACs come within 0.3%
  /// of the paper's Table 2 (docs/MODELS.md).
  TORCH_ARG(int64_t, classifier_hidden) = 0;
  /// Biased convolutions (PyTorch's nn.Conv2d default, as the released code has).
  TORCH_ARG(bool, conv_bias) = false;
  /// torchvision's VGG initialisation; false: LibTorch's (= PyTorch's) default.
  TORCH_ARG(bool, torchvision_init) = true;
};

/// VGG from a table of widths: a width is a 3x3 conv-BN-ReLU layer, kVggMaxPool
/// a 2x2 max-pool of stride 2.
struct VggImpl : ClassifierImpl {
  VggImpl(const std::vector<int64_t>& widths, const ModelConfig& config, VggOptions options = {});
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential classifier{nullptr};
};
TORCH_MODULE(Vgg);

}  // namespace was::models
