// The inverted residual block of MobileNetV2 (Sandler et al., §3.3) and, with a
// kxk depthwise kernel and drop-connect, EfficientNet's MBConv without
// squeeze-and-excitation (the Lite variant): expand (1x1, skipped when the
// ratio is 1 unless always_expand), depthwise kxk (the stride), project (1x1,
// linear: no activation); ReLU6; an identity shortcut when the stride is 1 and
// the widths match.
#pragma once

#include <torch/torch.h>

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

struct InvertedResidualOptions {
  InvertedResidualOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size) = 3;  ///< the depthwise kernel (odd)
  TORCH_ARG(int64_t, stride) = 1;       ///< 1 or 2
  TORCH_ARG(int64_t, expand_ratio) = 1;
  TORCH_ARG(bool, always_expand) = false;  ///< a 1x1 expansion also at ratio 1 (MobileNetV2's released code)
  TORCH_ARG(bool, bias) = false;           ///< biased convolutions
  /// eps and momentum of every BatchNorm (the channel count is the block's).
  TORCH_ARG(torch::nn::BatchNormOptions, batchnorm) = torch::nn::BatchNormOptions(1);
  /// Training: each sample's residual branch is dropped with this probability
  /// and the kept ones rescaled (EfficientNet's drop_connect).
  TORCH_ARG(double, drop_connect) = 0.0;
};

struct InvertedResidualImpl : torch::nn::Module {
  explicit InvertedResidualImpl(const InvertedResidualOptions& options);
  torch::Tensor forward(torch::Tensor x);

  bool use_residual;
  double drop_connect;
  was::CompactableConv2d expand{nullptr}, depthwise{nullptr}, project{nullptr};
  was::FoldableBatchNorm2d expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace was::models
