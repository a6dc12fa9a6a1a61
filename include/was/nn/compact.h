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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "was/nn/window_conv.h"

namespace was {

/// A convolution's geometry (stride, padding, dilation, groups): the
/// options a torch::nn::Conv2d holds.
using ConvGeometry = torch::nn::detail::ConvNdOptions<2>;

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
  /// The project's own kernel for this part (window_conv.h); null where it
  /// cannot run it (plans of several parts never use it).
  std::shared_ptr<const WindowConv> own_kernel;
  /// Only the own kernel runs `window`: `weight` and `pad` are the whole
  /// kernel's (a depthwise window oneDNN runs slower than the full kernel).
  bool dense_fallback = false;
};

/// Which kernel measured faster for each input shape (sizes and thread
/// count), shared by the copies of a plan.
struct MeasuredKernels {
  std::mutex mutex;
  std::map<std::vector<int64_t>, bool> own_is_faster;
};

/// How a convolution runs compacted.
struct CompactPlan {
  std::vector<ConvPart> parts;
  torch::Tensor restore_order;  ///< output permutation after concatenating parts (undefined: one part)
  int64_t dense_taps = 0;       ///< kh*kw*O of the original layer
  int64_t compact_taps = 0;     ///< sum over parts of h*w*O_part
  std::shared_ptr<MeasuredKernels> measured = std::make_shared<MeasuredKernels>();
  std::string describe() const;
  /// "own", "onednn" or "not measured" for an input of these sizes at the
  /// current thread count under WindowKernelChoice::automatic.
  std::string kernel_for(const std::vector<int64_t>& input_sizes) const;
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

/// Runs a plan: F::pad + conv2d per part, concatenated and reordered; a
/// one-part plan whose own kernel accepts the input runs that kernel instead
/// where window_kernel_choice() says so (automatic: where it measured
/// faster for this input shape, timed at the first forward of that shape).
torch::Tensor run_compact(const CompactPlan& plan, const torch::nn::Conv2dImpl& conv, const torch::Tensor& input);

/// The same for a convolution known by its geometry only (a Python
/// torch.nn.Conv2d).
std::optional<CompactPlan> plan_compaction(const ConvGeometry& options, const torch::Tensor& weight,
                                           const torch::Tensor& bias, int64_t max_parts = 8,
                                           std::string* why_dense = nullptr);
torch::Tensor run_compact(const CompactPlan& plan, const ConvGeometry& options, const torch::Tensor& input);

}  // namespace was
