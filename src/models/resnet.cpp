#include "was/models/resnet.h"

namespace was::models {
namespace {

using was::CompactableConv2d;
using was::FoldableBatchNorm2d;

CompactableConv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return CompactableConv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, int64_t shortcut_kernel)
    : conv1(register_module("conv1", conv3x3(in_planes, planes, stride))),
      conv2(register_module("conv2", conv3x3(planes, planes, 1))),
      bn1(register_module("bn1", FoldableBatchNorm2d(planes))),
      bn2(register_module("bn2", FoldableBatchNorm2d(planes))) {
  shortcut = torch::nn::Sequential();
  if (stride != 1 || in_planes != planes) {
    shortcut->push_back(CompactableConv2d(torch::nn::Conv2dOptions(in_planes, planes, shortcut_kernel)
                                              .stride(stride)
                                              .padding(shortcut_kernel / 2)
                                              .bias(false)));
    shortcut->push_back(FoldableBatchNorm2d(planes));
  }
  register_module("shortcut", shortcut);
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = torch::relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  out += shortcut->is_empty() ? x : shortcut->forward(x);
  return torch::relu(out);
}

ResNetImpl::ResNetImpl(std::vector<int64_t> blocks, const ModelConfig& config, ResNetOptions options) {
  TORCH_CHECK(blocks.size() == 4, "ResNet needs 4 stages, got ", blocks.size());
  conv1 = register_module("conv1", conv3x3(config.in_channels, 64, 1));
  bn1 = register_module("bn1", FoldableBatchNorm2d(64));
  int64_t in_planes = 64;
  const int64_t k = options.shortcut_kernel();
  TORCH_CHECK(k == 1 || k == 3, "ResNet: the shortcut kernel must be 1 or 3, got ", k);
  layer1 = register_module("layer1", make_stage(in_planes, 64, blocks[0], 1, k));
  layer2 = register_module("layer2", make_stage(in_planes, 128, blocks[1], 2, k));
  layer3 = register_module("layer3", make_stage(in_planes, 256, blocks[2], 2, k));
  layer4 = register_module("layer4", make_stage(in_planes, 512, blocks[3], 2, k));
  fc = register_module("fc", torch::nn::Linear(512, config.num_classes));
  if (!options.kaiming_init()) return;
  // torchvision's initialisation: Kaiming-normal (fan-out) convolutions.
  for (auto& module : modules(/*include_self=*/false))
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get()))
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::nn::Sequential ResNetImpl::make_stage(int64_t& in_planes, int64_t planes, int64_t blocks, int64_t stride,
                                             int64_t shortcut_kernel) {
  torch::nn::Sequential stage;
  for (int64_t i = 0; i < blocks; ++i) {
    stage->push_back(BasicBlock(in_planes, planes, i == 0 ? stride : 1, shortcut_kernel));
    in_planes = planes;
  }
  return stage;
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  x = torch::relu(bn1(conv1(x)));  // N x 64 x 32 x 32
  x = layer1->forward(x);          // N x 64 x 32 x 32
  x = layer2->forward(x);          // N x 128 x 16 x 16
  x = layer3->forward(x);          // N x 256 x 8 x 8
  x = layer4->forward(x);          // N x 512 x 4 x 4
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc(x);
}

}  // namespace was::models

namespace was::models {

CifarResNetImpl::BlockImpl::BlockImpl(int64_t in_planes, int64_t planes, int64_t stride_)
    : conv1(register_module("conv1", conv3x3(in_planes, planes, stride_))),
      conv2(register_module("conv2", conv3x3(planes, planes, 1))),
      bn1(register_module("bn1", FoldableBatchNorm2d(planes))),
      bn2(register_module("bn2", FoldableBatchNorm2d(planes))),
      stride(stride_),
      pad_channels(planes - in_planes) {}

torch::Tensor CifarResNetImpl::BlockImpl::forward(torch::Tensor x) {
  auto out = torch::relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  // Option A: subsample, and zero channels for the wider output.
  auto shortcut = stride == 1 ? x : x.slice(2, 0, c10::nullopt, stride).slice(3, 0, c10::nullopt, stride);
  if (pad_channels > 0)
    shortcut = torch::constant_pad_nd(shortcut, {0, 0, 0, 0, pad_channels / 2, pad_channels - pad_channels / 2});
  return torch::relu(out + shortcut);
}

CifarResNetImpl::CifarResNetImpl(int64_t depth, const ModelConfig& config) {
  TORCH_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "CIFAR ResNet: depth must be 6n + 2, got ", depth);
  const int64_t n = (depth - 2) / 6;
  conv1 = register_module("conv1", conv3x3(config.in_channels, 16, 1));
  bn1 = register_module("bn1", FoldableBatchNorm2d(16));
  const auto stage = [n](int64_t in_planes, int64_t planes, int64_t stride) {
    torch::nn::Sequential s;
    for (int64_t i = 0; i < n; ++i) s->push_back(Block(i == 0 ? in_planes : planes, planes, i == 0 ? stride : 1));
    return s;
  };
  layer1 = register_module("layer1", stage(16, 16, 1));
  layer2 = register_module("layer2", stage(16, 32, 2));
  layer3 = register_module("layer3", stage(32, 64, 2));
  fc = register_module("fc", torch::nn::Linear(64, config.num_classes));
  for (auto& module : modules(/*include_self=*/false))
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get()))
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor CifarResNetImpl::forward(torch::Tensor x) {
  x = torch::relu(bn1(conv1(x)));  // N x 16 x 32 x 32
  x = layer1->forward(x);          // N x 16 x 32 x 32
  x = layer2->forward(x);          // N x 32 x 16 x 16
  x = layer3->forward(x);          // N x 64 x 8 x 8
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc(x);
}

}  // namespace was::models
