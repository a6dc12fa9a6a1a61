#include "was/models/mobilenetv2.h"

#include "was/models/inverted_residual.h"

namespace was::models {
namespace {

was::CompactableConv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                            bool bias = false) {
  return was::CompactableConv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(bias));
}

// One row of the paper's Table 2: expansion t, output channels c, blocks n, stride s.
struct Stage {
  int64_t expand_ratio, channels, blocks, stride;
};

}  // namespace

MobileNetV2Impl::MobileNetV2Impl(const ModelConfig& config, MobileNetV2Options options) {
  const bool released = options.released_code();
  // clang-format off
  const std::vector<Stage> stages = {
      // t, c,   n, s
      {1, 16,  1, 1},
      {6, 24,  2, released ? 2 : options.stage2_stride()},  // 2 on ImageNet
      {6, 32,  3, 2},
      {6, 64,  4, 2},
      {6, 96,  3, 1},
      {6, 160, 3, released ? 1 : 2},
      {6, 320, 1, 1},
  };
  // clang-format on
  stem = register_module("stem", released ? conv(config.in_channels, 32, 1, 1, 1, /*bias=*/true)
                                          : conv(config.in_channels, 32, 3, options.stem_stride()));
  stem_bn = register_module("stem_bn", was::FoldableBatchNorm2d(32));
  blocks = torch::nn::Sequential();
  int64_t channels = 32;
  for (const auto& stage : stages) {
    for (int64_t i = 0; i < stage.blocks; ++i) {
      blocks->push_back(InvertedResidual(InvertedResidualOptions(channels, stage.channels)
                                             .stride(i == 0 ? stage.stride : 1)
                                             .expand_ratio(stage.expand_ratio)
                                             .always_expand(released)
                                             .bias(released)));
      channels = stage.channels;
    }
  }
  register_module("blocks", blocks);
  head = register_module("head", conv(channels, 1280, 1, 1, 1, released));
  head_bn = register_module("head_bn", was::FoldableBatchNorm2d(1280));
  fc = register_module("fc", torch::nn::Linear(1280, config.num_classes));
  if (released) return;  // LibTorch's default initialisation, as the released code has

  // torchvision's MobileNetV2 initialisation.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(module.get())) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
    } else if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(module.get())) {
      torch::nn::init::normal_(linear->weight, 0.0, 0.01);
      torch::nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor MobileNetV2Impl::forward(torch::Tensor x) {
  x = relu6_bf16_safe(stem_bn(stem(x)));                 // N x 32 x 32 x 32 (CIFAR strides)
  x = blocks->forward(x);                                // N x 320 x 4 x 4
  x = relu6_bf16_safe(head_bn(head(x)));                 // N x 1280 x 4 x 4
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);  // N x 1280
  return fc(x);                                          // N x classes
}

}  // namespace was::models
