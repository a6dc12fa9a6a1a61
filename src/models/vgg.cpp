#include "was/models/vgg.h"

#include <string>

#include "was/core/error.h"

namespace was::models {

const std::vector<int64_t>& vgg16_widths() {
  // clang-format off
  static const std::vector<int64_t> widths = {
      64, 64, kVggMaxPool,
      128, 128, kVggMaxPool,
      256, 256, 256, kVggMaxPool,
      512, 512, 512, kVggMaxPool,
      512, 512, 512, kVggMaxPool,
  };
  // clang-format on
  return widths;
}

VggImpl::VggImpl(const std::vector<int64_t>& widths, const ModelConfig& config, VggOptions options) {
  features = torch::nn::Sequential();
  int64_t channels = config.in_channels;
  int64_t pools = 0;
  for (const int64_t width : widths) {
    if (width == kVggMaxPool) {
      features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      ++pools;
      continue;
    }
    TORCH_CHECK(width > 0, "VGG width table: widths must be positive or kVggMaxPool, got ", width);
    // No bias by default: the BatchNorm that follows has its own shift.
    features->push_back(
        was::CompactableConv2d(torch::nn::Conv2dOptions(channels, width, 3).padding(1).bias(options.conv_bias())));
    features->push_back(was::FoldableBatchNorm2d(width));
    features->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(/*inplace=*/true)));
    channels = width;
  }
  if (config.image_size < (int64_t{1} << pools))
    throw Error("model '" + config.name + "' halves its input " + std::to_string(pools) + " times and needs at least " +
                    std::to_string(int64_t{1} << pools) + "x" + std::to_string(int64_t{1} << pools) + " images, got " +
                    std::to_string(config.image_size) + "x" + std::to_string(config.image_size),
                "use a dataset of 32x32 images (CIFAR) or a model that accepts smaller ones (small_cnn, resnet18)");
  register_module("features", features);

  classifier = torch::nn::Sequential();
  if (options.classifier_hidden() > 0) {
    const int64_t hidden = options.classifier_hidden();
    classifier->push_back(torch::nn::Linear(channels, hidden));
    classifier->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    classifier->push_back(torch::nn::Dropout(0.5));
    classifier->push_back(torch::nn::Linear(hidden, hidden));
    classifier->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    classifier->push_back(torch::nn::Dropout(0.5));
    classifier->push_back(torch::nn::Linear(hidden, config.num_classes));
  } else {
    classifier->push_back(torch::nn::Linear(channels, config.num_classes));
  }
  register_module("classifier", classifier);
  if (!options.torchvision_init()) return;

  // torchvision's VGG initialisation.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get())) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(module.get())) {
      torch::nn::init::normal_(linear->weight, 0.0, 0.01);
      torch::nn::init::zeros_(linear->bias);
    }
  }
}

torch::Tensor VggImpl::forward(torch::Tensor x) {
  x = features->forward(x);                              // N x 512 x 1 x 1 at 32x32
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);  // N x 512 (the identity at 32x32)
  return classifier->forward(x);                         // N x classes
}

}  // namespace was::models
