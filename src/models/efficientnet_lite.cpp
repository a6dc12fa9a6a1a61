#include "was/models/efficientnet_lite.h"

#include "was/models/inverted_residual.h"

#include <cmath>

namespace was::models {
namespace {

was::CompactableConv2d lite_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1) {
  return was::CompactableConv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
}

// One row of B0's Table 1: expansion, depthwise kernel, output channels, blocks, stride.
struct LiteStage {
  int64_t expand_ratio, kernel_size, channels, blocks, stride;
};

}  // namespace

EfficientNetLiteImpl::EfficientNetLiteImpl(const ModelConfig& config, EfficientNetLiteOptions options) {
  // clang-format off
  const std::vector<LiteStage> stages = {
      // expand, kernel, channels, blocks, stride
      {1, 3, 16,  1, 1},
      {6, 3, 24,  2, options.stage2_stride()},
      {6, 5, 40,  2, 2},
      {6, 3, 80,  3, 2},
      {6, 5, 112, 3, 1},
      {6, 5, 192, 4, 2},
      {6, 3, 320, 1, 1},
  };
  // clang-format on
  // Lite: stem and head widths are fixed, not scaled with the width multiplier.
  const bool released = options.released_code();
  auto bn = torch::nn::BatchNormOptions(1);
  if (released) bn.eps(1e-3).momentum(0.01);
  const auto norm = [&bn](int64_t channels) {
    return was::FoldableBatchNorm2d(torch::nn::BatchNormOptions(channels).eps(bn.eps()).momentum(bn.momentum()));
  };
  stem = register_module("stem", lite_conv(config.in_channels, 32, 3, options.stem_stride()));
  stem_bn = register_module("stem_bn", norm(32));
  blocks = torch::nn::Sequential();
  int64_t channels = 32, index = 0;
  for (const auto& stage : stages) {
    for (int64_t i = 0; i < stage.blocks; ++i, ++index) {
      // The released loop scales 0.2 by the block index over the number of stages.
      const double drop_connect = released ? 0.2 * double(index) / double(stages.size()) : 0.0;
      blocks->push_back(InvertedResidual(InvertedResidualOptions(channels, stage.channels)
                                             .kernel_size(stage.kernel_size)
                                             .stride(i == 0 ? stage.stride : 1)
                                             .expand_ratio(stage.expand_ratio)
                                             .batchnorm(bn)
                                             .drop_connect(drop_connect)));
      channels = stage.channels;
    }
  }
  register_module("blocks", blocks);
  head = register_module("head", lite_conv(channels, 1280, 1));
  head_bn = register_module("head_bn", norm(1280));
  if (released) dropout = register_module("dropout", torch::nn::Dropout(0.2));
  fc = register_module("fc", torch::nn::Linear(1280, config.num_classes));
  if (released) return;

  // torchvision's EfficientNet initialisation.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(module.get())) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
    } else if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(module.get())) {
      const double range = 1.0 / std::sqrt(double(linear->weight.size(0)));
      torch::nn::init::uniform_(linear->weight, -range, range);
      torch::nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor EfficientNetLiteImpl::forward(torch::Tensor x) {
  x = relu6_bf16_safe(stem_bn(stem(x)));                 // N x 32 x 32 x 32 (CIFAR strides)
  x = blocks->forward(x);                                // N x 320 x 2 x 2
  x = relu6_bf16_safe(head_bn(head(x)));                 // N x 1280 x 2 x 2
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);  // N x 1280
  if (!dropout.is_empty()) x = dropout(x);
  return fc(x);  // N x classes
}

}  // namespace was::models
