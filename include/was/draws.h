// Draws (WAS-SPEC §4): one concrete θ per kernel plane from a policy and a
// counter-based stream, consuming the same randomness whatever the outcome.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "was/core/rng.h"
#include "was/policy.h"

namespace was {

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

}  // namespace was
