// Transform policies (WAS-SPEC §3, §7, §8): which kernel-plane transforms a
// WAS run draws, their ranges and probabilities, granularity and exclusions,
// in the project's family or the released code's (`paper:`), with their
// text form.
#pragma once

#include <optional>
#include <string>
#include <vector>

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

}  // namespace was
