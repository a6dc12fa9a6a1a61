#include "was/models/small_cnn.h"

namespace was::models {
namespace {

using was::CompactableConv2d;
using was::FoldableBatchNorm2d;

CompactableConv2d conv3x3(int64_t in, int64_t out, bool bias) {
  return CompactableConv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(bias));
}

}  // namespace

SmallCnnImpl::SmallCnnImpl(const ModelConfig& config, bool batchnorm)
    : conv1(register_module("conv1", conv3x3(config.in_channels, 32, !batchnorm))),
      conv2(register_module("conv2", conv3x3(32, 64, !batchnorm))),
      conv3(register_module("conv3", conv3x3(64, 128, !batchnorm))),
      fc(register_module("fc", torch::nn::Linear(128, config.num_classes))) {
  if (batchnorm) {
    bn1 = register_module("bn1", FoldableBatchNorm2d(32));
    bn2 = register_module("bn2", FoldableBatchNorm2d(64));
    bn3 = register_module("bn3", FoldableBatchNorm2d(128));
  }
}

torch::Tensor SmallCnnImpl::forward(torch::Tensor x) {
  const auto norm = [](FoldableBatchNorm2d& bn, const torch::Tensor& t) { return bn ? bn(t) : t; };
  x = torch::max_pool2d(torch::relu(norm(bn1, conv1(x))), 2);  // N x 32 x H/2 x W/2
  x = torch::max_pool2d(torch::relu(norm(bn2, conv2(x))), 2);  // N x 64 x H/4 x W/4
  x = torch::relu(norm(bn3, conv3(x)));                        // N x 128 x H/4 x W/4
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc(x);
}

}  // namespace was::models
