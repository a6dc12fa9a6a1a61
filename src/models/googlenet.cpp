#include "was/models/googlenet.h"

namespace was::models {
namespace {

torch::Tensor max_pool(const torch::Tensor& x, int64_t stride) {
  return torch::max_pool2d(x, /*kernel_size=*/3, stride, /*padding=*/1);
}

}  // namespace

BasicConv2dImpl::BasicConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias) {
  // No bias by default: the BatchNorm that follows has its own shift.
  const auto options =
      torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size).padding(kernel_size / 2).bias(bias);
  conv = register_module("conv", was::CompactableConv2d(options));
  bn = register_module("bn", was::FoldableBatchNorm2d(out_channels));
}

torch::Tensor BasicConv2dImpl::forward(torch::Tensor x) { return torch::relu(bn(conv(x))); }

InceptionImpl::InceptionImpl(int64_t in_channels, int64_t ch1x1, int64_t ch3x3_reduce, int64_t ch3x3,
                             int64_t ch5x5_reduce, int64_t ch5x5, int64_t pool_proj, bool factorize_5x5, bool bias)
    : out_channels_(ch1x1 + ch3x3 + ch5x5 + pool_proj) {
  const bool b = bias;
  branch1 = register_module("branch1", torch::nn::Sequential(BasicConv2d(in_channels, ch1x1, 1, b)));
  branch2 = register_module("branch2", torch::nn::Sequential(BasicConv2d(in_channels, ch3x3_reduce, 1, b),
                                                             BasicConv2d(ch3x3_reduce, ch3x3, 3, b)));
  branch3 = torch::nn::Sequential(BasicConv2d(in_channels, ch5x5_reduce, 1, b));
  if (factorize_5x5) {
    branch3->push_back(BasicConv2d(ch5x5_reduce, ch5x5, 3, b));
    branch3->push_back(BasicConv2d(ch5x5, ch5x5, 3, b));
  } else {
    branch3->push_back(BasicConv2d(ch5x5_reduce, ch5x5, 5, b));
  }
  register_module("branch3", branch3);
  // The pooling branch: its max-pool runs in forward, this is its 1x1 projection.
  branch4 = register_module("branch4", torch::nn::Sequential(BasicConv2d(in_channels, pool_proj, 1, b)));
}

torch::Tensor InceptionImpl::forward(torch::Tensor x) {
  return torch::cat({branch1->forward(x), branch2->forward(x), branch3->forward(x), branch4->forward(max_pool(x, 1))},
                    /*dim=*/1);
}

GoogLeNetImpl::GoogLeNetImpl(const ModelConfig& config, GoogLeNetOptions options) {
  const bool f = options.factorize_5x5(), b = options.released_code();
  stem = register_module("stem", BasicConv2d(config.in_channels, 192, 3, b));
  // Widths: the paper's Table 1 (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj).
  a3 = register_module("a3", Inception(192, 64, 96, 128, 16, 32, 32, f, b));
  b3 = register_module("b3", Inception(256, 128, 128, 192, 32, 96, 64, f, b));
  a4 = register_module("a4", Inception(480, 192, 96, 208, 16, 48, 64, f, b));
  b4 = register_module("b4", Inception(512, 160, 112, 224, 24, 64, 64, f, b));
  c4 = register_module("c4", Inception(512, 128, 128, 256, 24, 64, 64, f, b));
  d4 = register_module("d4", Inception(512, 112, 144, 288, 32, 64, 64, f, b));
  e4 = register_module("e4", Inception(528, 256, 160, 320, 32, 128, 128, f, b));
  a5 = register_module("a5", Inception(832, 256, 160, 320, 32, 128, 128, f, b));
  b5 = register_module("b5", Inception(832, 384, 192, 384, 48, 128, 128, f, b));
  fc = register_module("fc", torch::nn::Linear(b5->out_channels(), config.num_classes));
  if (b) return;
  // Kaiming-normal (fan-out) convolutions, as the zoo's ResNet.
  for (auto& module : modules(/*include_self=*/false))
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get()))
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor GoogLeNetImpl::forward(torch::Tensor x) {
  x = stem(x);                                           // N x 192 x 32 x 32 (no early down-sampling)
  x = a3(x);                                             // N x 256 x 32 x 32
  x = b3(x);                                             // N x 480 x 32 x 32
  x = max_pool(x, 2);                                    // N x 480 x 16 x 16
  x = a4(x);                                             // N x 512 x 16 x 16
  x = b4(x);                                             // N x 512 x 16 x 16
  x = c4(x);                                             // N x 512 x 16 x 16
  x = d4(x);                                             // N x 528 x 16 x 16
  x = e4(x);                                             // N x 832 x 16 x 16
  x = max_pool(x, 2);                                    // N x 832 x 8 x 8
  x = a5(x);                                             // N x 832 x 8 x 8
  x = b5(x);                                             // N x 1024 x 8 x 8
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);  // N x 1024
  return fc(x);                                          // N x classes
}

}  // namespace was::models
