// The zoo's layer types: a convolution whose training weight can be computed
// when it runs (how WAS draws shadow weights on the convolutions it owns), one
// that can also run compacted, and a BatchNorm that can be folded into the
// convolution before it.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <ostream>

#include "was/nn/compact.h"

namespace was {

/// A torch::nn::Conv2d whose training forward can take its weight from a
/// source called when the layer runs (unset: `weight`, as any Conv2d).
/// WAS's shadow weights are drawn this way on the convolutions the project
/// builds (ShadowLayer::train_with_draw): the transform then sits next to its
/// convolution in the autograd graph, so backward delivers W's gradient
/// right after this layer's and a data-parallel all-reduce can start while
/// backward goes on. Any other Conv2d gets its draw before the forward.
class DeferredWeightConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  using torch::nn::Conv2dImpl::Conv2dImpl;
  torch::Tensor forward(const torch::Tensor& input);
  void defer_training_weight(std::function<torch::Tensor()> source) { training_weight_ = std::move(source); }

 protected:
  /// What a training forward computes with.
  torch::Tensor training_weight() { return training_weight_ ? training_weight_() : weight; }

 private:
  std::function<torch::Tensor()> training_weight_;
};

/// A convolution that can also run a compact plan at inference. The zoo
/// builds its convolutions from it; options and parameters are
/// torch::nn::Conv2d's.
class CompactableConv2dImpl : public DeferredWeightConv2dImpl {
 public:
  using DeferredWeightConv2dImpl::DeferredWeightConv2dImpl;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  void set_plan(std::optional<CompactPlan> plan) { plan_ = std::move(plan); }
  const std::optional<CompactPlan>& plan() const { return plan_; }

 private:
  std::optional<CompactPlan> plan_;
};
TORCH_MODULE(CompactableConv2d);

/// BatchNorm2d (same options, parameters, buffers and arithmetic as
/// torch::nn::BatchNorm2d) that can be folded away into the convolution before
/// it, after which its forward is the identity. Its own class rather than a
/// subclass: Debian's LibTorch does not export the base-class symbols a
/// subclass of BatchNorm2dImpl needs.
class FoldableBatchNorm2dImpl : public torch::nn::Cloneable<FoldableBatchNorm2dImpl> {
 public:
  explicit FoldableBatchNorm2dImpl(int64_t num_features)
      : FoldableBatchNorm2dImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit FoldableBatchNorm2dImpl(const torch::nn::BatchNormOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  void set_folded(bool folded) { folded_ = folded; }
  bool folded() const { return folded_; }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  bool folded_ = false;
};
TORCH_MODULE(FoldableBatchNorm2d);

}  // namespace was
