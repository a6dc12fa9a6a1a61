// Compact DOM: run sparse shadow weights as smaller dense convolutions.
//
// Under `layer` granularity a crop and an integer translate leave every filter
// of a layer with the same rectangular support inside the kxk plane (a
// rotation by a multiple of 90° maps it to another rectangle). A convolution
// whose kernel is zero outside a window equals a convolution with just that
// window, the zero padding moved to keep every output where it was — the
// counted MACs saving becomes a wall-clock one. Filters with different
// supports (`filter` granularity) are grouped by support.
#pragma once

#include <torch/torch.h>

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace was {

/// Inclusive bounding box of the non-zero taps of a kernel plane.
struct KernelWindow {
  int64_t r0 = 0, r1 = -1, c0 = 0, c1 = -1;  ///< empty when r1 < r0
  bool empty() const { return r1 < r0 || c1 < c0; }
  int64_t height() const { return empty() ? 0 : r1 - r0 + 1; }
  int64_t width() const { return empty() ? 0 : c1 - c0 + 1; }
};

/// The window of the taps that are non-zero in any plane of `weight` ([O, I, kh, kw]).
KernelWindow nonzero_window(const torch::Tensor& weight);

/// One dense piece of a compacted convolution: some output filters, their
/// sub-kernel, and the (possibly negative, i.e. cropping) zero padding
/// (left, right, top, bottom) that keeps the output grid unchanged.
struct ConvPart {
  torch::Tensor filters;  ///< int64 output-channel indices; undefined: all, in order
  torch::Tensor weight;   ///< [O_part, I/groups, h, w]
  torch::Tensor bias;     ///< [O_part] or undefined
  std::array<int64_t, 4> pad{0, 0, 0, 0};
  KernelWindow window;
};

/// How a convolution runs compacted.
struct CompactPlan {
  std::vector<ConvPart> parts;
  torch::Tensor restore_order;  ///< output permutation after concatenating parts (undefined: one part)
  int64_t dense_taps = 0;       ///< kh*kw*O of the original layer
  int64_t compact_taps = 0;     ///< sum over parts of h*w*O_part
  std::string describe() const;
};

/// Plans the compact form of a convolution with `conv`'s geometry (stride,
/// padding, dilation, groups) and the given weights. Returns nullopt when
/// nothing can be trimmed. Filters whose supports differ are split into at
/// most `max_parts` groups of equal support, the smallest groups sharing the
/// union of their windows beyond that (only for groups == 1; grouped
/// and depthwise convolutions use the union window).
/// `why_dense`, when given, receives the reason a layer stays dense.
std::optional<CompactPlan> plan_compaction(const torch::nn::Conv2dImpl& conv, const torch::Tensor& weight,
                                           const torch::Tensor& bias, int64_t max_parts = 8,
                                           std::string* why_dense = nullptr);

/// Runs a plan: F::pad + conv2d per part, concatenated and reordered.
torch::Tensor run_compact(const CompactPlan& plan, const torch::nn::Conv2dImpl& conv, const torch::Tensor& input);

/// A torch::nn::Conv2d that can run a compact plan. The zoo builds its
/// convolutions from it; everything else (options, parameters, WAS control
/// through `weight`) is torch::nn::Conv2d's.
class CompactableConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  using torch::nn::Conv2dImpl::Conv2dImpl;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  void set_plan(std::optional<CompactPlan> plan) { plan_ = std::move(plan); }
  const std::optional<CompactPlan>& plan() const { return plan_; }

  /// While training, compute with `source()` rather than `weight` (unset:
  /// `weight`). WAS draws its shadow weights here, when the layer runs: their
  /// transform then sits next to this convolution in the autograd graph, so
  /// backward delivers W's gradient right after this layer's and a
  /// data-parallel all-reduce can start while backward goes on.
  void set_training_weight(std::function<torch::Tensor()> source) { training_weight_ = std::move(source); }

 private:
  std::optional<CompactPlan> plan_;
  std::function<torch::Tensor()> training_weight_;
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
