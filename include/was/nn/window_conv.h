// A convolution kernel of the project's own for the small windows compact DOM
// leaves (1x1, 1x2, 2x1, 2x2, ... of a 3x3 or 5x5 kernel), forward only.
//
// oneDNN runs these windows far below its 3x3 speed and pays a padded copy for
// every window off the kernel's centre. This kernel works on NHWC input: a
// tile of output pixels times 32 output channels is accumulated in registers,
// tap by tap, each tap a product over the input channels of a shifted view of
// the input; taps that fall outside the map read a row of zeros instead of a
// padded copy, so any window placement, stride and dilation costs the same.
// Depthwise convolutions take one vector of 16 channels per pixel and tap.
// It needs AVX-512 (checked at run time); compact DOM uses it per layer only
// where it measured faster than oneDNN (run_compact).
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>

namespace was {

/// Which kernel runs a compacted window: `automatic` measures both per layer
/// and input shape at the first forward and keeps the faster; `onednn` and
/// `own` force one (tests, benchmarks). The default comes from the
/// environment variable WAS_COMPACT_KERNEL (auto, onednn, own), else automatic.
enum class WindowKernelChoice { automatic, onednn, own };
WindowKernelChoice window_kernel_choice();
void set_window_kernel_choice(WindowKernelChoice choice);
/// "auto", "onednn", "own"; nullopt for anything else.
std::optional<WindowKernelChoice> parse_window_kernel_choice(const std::string& text);

/// One dense convolution with a small kernel and explicit zero padding of
/// either sign (left, right, top, bottom; negative crops), as ConvPart holds it.
class WindowConv {
 public:
  /// The kernel for this convolution, or null with the reason in `why_not`
  /// when it cannot run it: no AVX-512, grouped convolutions other than
  /// depthwise ones, output channels not a multiple of 16, not float32, more
  /// than 25 taps.
  static std::shared_ptr<const WindowConv> make(const torch::Tensor& weight, const torch::Tensor& bias,
                                                std::array<int64_t, 2> stride, std::array<int64_t, 2> dilation,
                                                std::array<int64_t, 4> pad, int64_t groups,
                                                std::string* why_not = nullptr);

  /// Whether `input` is one this kernel runs: a float32 CPU tensor
  /// [N, C, H, W] stored channels-last, no gradient asked for, and an output
  /// of at least one pixel.
  bool accepts(const torch::Tensor& input) const;

  /// The convolution of `input` (accepts() must hold), channels-last.
  torch::Tensor operator()(const torch::Tensor& input) const;

 private:
  WindowConv() = default;
  torch::Tensor weight_;  ///< [O, I, kh, kw], for the MACs counter
  torch::Tensor packed_;  ///< [ceil(O/32), kh*kw, I, 32], zero-padded output channels; depthwise: [kh*kw, O]
  torch::Tensor bias_;    ///< [ceil(O/32)*32] (zeros when the layer has none)
  bool depthwise_ = false;
  int64_t out_channels_ = 0, in_channels_ = 0, kh_ = 0, kw_ = 0;
  std::array<int64_t, 2> stride_{1, 1}, dilation_{1, 1};
  std::array<int64_t, 4> pad_{0, 0, 0, 0};
};

}  // namespace was
