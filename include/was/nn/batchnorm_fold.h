// Folding a BatchNorm into the convolution before it, for inference.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "was/nn/layers.h"

namespace was {

/// A convolution and the BatchNorm that directly and only consumes its output.
struct ConvBatchNormPair {
  std::string conv, batchnorm;  ///< module names in the model
};

/// Folds `bn`'s current (eval) statistics and affine into `conv`: returns the
/// weight and bias of the equivalent convolution, W' = W * g / sqrt(var + eps),
/// b' = (b - mean) * g / sqrt(var + eps) + beta.
std::pair<torch::Tensor, torch::Tensor> fold_batchnorm(const torch::Tensor& weight, const torch::Tensor& bias,
                                                       const FoldableBatchNorm2dImpl& bn);

}  // namespace was
