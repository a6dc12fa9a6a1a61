// Kernel-plane transforms of WAS: crop, translate, rotate (WAS-SPEC §3-4),
// and the released code's family: resized crop, nearest rotation, one of the
// listed transforms per draw, a learnable gain (WAS-SPEC §8, `paper:`).
//
// Every transform maps the kh x kw plane of a kernel. For fixed parameters it
// is linear, S = A W, with A a (kh*kw) x (kh*kw) matrix over the row-major
// plane, so a whole layer is transformed by one pass applying A to every plane
// (a vectorised loop on the CPU, a matmul elsewhere) and the backward applies
// A^T (paper eq. 6).
#pragma once

#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "was/core/rng.h"

namespace was {

enum class Granularity { kLayer, kFilter };

/// Whose semantics a policy follows: the project's reading of the paper's
/// text (WAS-SPEC §3-7), or the authors' released code (WAS-SPEC §8).
enum class Family { kSpec, kPaper };

/// crop(smin, smax): keep a window of ratio s ~ U(smin, smax), zero the rest.
struct CropRange {
  double smin = 0.8;
  double smax = 1.0;
  double p = 1.0;  ///< probability of applying the transform at a draw
};
/// rcrop(smin, smax), paper family: torchvision's RandomResizedCrop of the
/// plane (area fraction U(smin, smax), aspect ratio log-uniform in [3/4, 4/3],
/// 10 tries then a centre crop), the window resized back bilinearly. Dense.
struct ResizedCropRange {
  double smin = 0.8;
  double smax = 1.0;
  double p = 1.0;
};
/// translate(fx, fy): shift by round(U(-f*k, f*k)) taps, zero fill.
struct TranslateRange {
  double fx = 0.3;
  double fy = 0.3;
  double p = 1.0;
};
/// rotate(amin, amax) in degrees, zero outside; bilinear, or nearest in the
/// paper family (torchvision's RandomRotation default).
struct RotateRange {
  double amin = 0.0;
  double amax = 90.0;
  double p = 1.0;
};

/// Which transforms, their ranges and probabilities, their granularity and
/// which layers they leave alone. An empty policy is the plain baseline.
///
/// The paper family (`paper:` in text) differs in four ways: a draw applies
/// exactly one of the listed transforms, chosen uniformly; crops are resized
/// crops; rotations are nearest; the shadow path is scaled by one learnable
/// gain per layer (unless `gain=off`); and on a `_paper` zoo model only the
/// layers the released code transforms are transformed.
struct Policy {
  std::optional<CropRange> crop;          ///< spec family only
  std::optional<ResizedCropRange> rcrop;  ///< paper family only
  std::optional<TranslateRange> translate;
  std::optional<RotateRange> rotate;
  Granularity granularity = Granularity::kLayer;
  std::vector<std::string> exclude;  ///< module names (e.g. "conv1") left plain
  Family family = Family::kSpec;
  bool gain = false;  ///< paper family: S = g * T(W) with a learnable g per layer

  bool empty() const { return !crop && !rcrop && !translate && !rotate; }
  bool is_paper() const { return family == Family::kPaper; }
  /// Throws was::Error naming the first out-of-range value.
  void validate() const;
  /// Canonical text form; `Policy::parse(p.to_string())` gives p back.
  std::string to_string() const;

  /// Parses a preset (`C`, `T`, `R`, `CT`, `CTR`, optionally `-CT` and
  /// `CT@p=0.5`), `none`, or a list such as
  /// `crop=0.4:0.6@p=0.5,translate=0.3:0.3,rotate=0:90,granularity=filter,exclude=conv1`.
  /// `paper:` before the same forms selects the paper family (presets with
  /// the released code's ranges: C = rcrop 0.8:1.0, T = translate 0.3:0.3,
  /// R = rotate -90:90; keys rcrop, translate, rotate, granularity, exclude,
  /// gain=on|off).
  static Policy parse(const std::string& text);
  /// The paper's presets (WAS-SPEC §7).
  static Policy preset(const std::string& name);
  /// The released code's presets (WAS-SPEC §8): C, T, R, CT, CTR.
  static Policy paper_preset(const std::string& name);
};

bool operator==(const Policy& a, const Policy& b);

/// A crop window inside the plane, rows [y0, y0+h), columns [x0, x0+w).
struct CropWindow {
  int64_t y0 = 0, x0 = 0, h = 0, w = 0;
};

/// One concrete draw θ for one kernel plane: what each transform does.
struct TransformParams {
  std::optional<CropWindow> crop;
  std::optional<CropWindow> resized_crop;  ///< the window, resized back to the plane (bilinear)
  int64_t dx = 0;                          ///< columns; positive moves content right
  int64_t dy = 0;                          ///< rows; positive moves content down
  std::optional<double> angle_deg;
  bool nearest = false;  ///< the rotation samples the nearest tap instead of interpolating

  bool is_identity(int64_t kh, int64_t kw) const;
  std::string to_string() const;
};

/// torchvision's RandomResizedCrop.get_params on a kh x kw plane, ratio
/// [3/4, 4/3]: `tries` holds the random numbers of its 10 tries (area
/// fraction, log-ratio uniform in [0, 1), then the two offsets).
struct ResizedCropTry {
  double u_area = 0, u_log_ratio = 0;
  uint64_t r_row = 0, r_col = 0;
};
CropWindow resized_crop_window(int64_t kh, int64_t kw, double smin, double smax,
                               const std::array<ResizedCropTry, 10>& tries);

/// Draws θ for a kh x kw plane from `stream`. Always consumes the same amount
/// of randomness whatever the outcome, so one draw never shifts the next.
TransformParams draw_params(const Policy& policy, int64_t kh, int64_t kw, CounterStream& stream);

// The matrices A (float64, CPU) of each transform; vec(S) = A vec(W).
torch::Tensor crop_matrix(int64_t kh, int64_t kw, const CropWindow& window);
torch::Tensor translate_matrix(int64_t kh, int64_t kw, int64_t dx, int64_t dy);
torch::Tensor rotate_matrix(int64_t kh, int64_t kw, double angle_deg, bool nearest = false);
/// The window resized back to kh x kw (torch's bilinear, align_corners=False).
torch::Tensor resized_crop_matrix(int64_t kh, int64_t kw, const CropWindow& window);
/// The composition rotate * translate * crop (crop applied first).
torch::Tensor transform_matrix(const TransformParams& params, int64_t kh, int64_t kw);

/// S = A W on every kernel plane of W ([O, I, kh, kw]). `a` is one matrix
/// [kk, kk] for the whole layer or one per filter [O, kk, kk]; it is moved to
/// W's device and dtype. Differentiable in W. On the CPU (planes up to 4x4) a
/// vectorised pass that skips A's zero columns; elsewhere a matmul.
torch::Tensor apply_plane_transform(const torch::Tensor& weight, const torch::Tensor& a);
/// The same as one matmul (a bmm per filter) on any device: the reference the
/// CPU pass is tested against, and the path for GPUs and larger planes.
torch::Tensor apply_dense_plane_transform(const torch::Tensor& weight, const torch::Tensor& a);

/// Applies known parameters to W: one set for the layer, or one per filter.
torch::Tensor apply_transform(const torch::Tensor& weight, const TransformParams& params);
torch::Tensor apply_transform(const torch::Tensor& weight, const std::vector<TransformParams>& per_filter);

}  // namespace was
