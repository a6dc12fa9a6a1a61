#include "was/nn/batchnorm_fold.h"

#include <cmath>

namespace was {

std::pair<torch::Tensor, torch::Tensor> fold_batchnorm(const torch::Tensor& weight, const torch::Tensor& bias,
                                                       const FoldableBatchNorm2dImpl& bn) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(bn.options.track_running_stats(), "fold_batchnorm: BatchNorm without running statistics");
  const auto scale = (bn.running_var + bn.options.eps()).rsqrt() *
                     (bn.options.affine() ? bn.weight : torch::ones_like(bn.running_var));
  const auto shift = bn.options.affine() ? bn.bias : torch::zeros_like(bn.running_mean);
  const auto w = weight * scale.view({-1, 1, 1, 1}).to(weight.dtype());
  const auto b0 = bias.defined() ? bias : torch::zeros_like(bn.running_mean);
  const auto b = (b0 - bn.running_mean) * scale + shift;
  return {w, b.to(weight.dtype())};
}

}  // namespace was
