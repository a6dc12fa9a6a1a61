#include <algorithm>
#include <cmath>
#include <sstream>

#include "was/draws.h"

namespace was {

bool TransformParams::is_identity(int64_t kh, int64_t kw) const {
  const bool full_crop = (!crop || (crop->h == kh && crop->w == kw)) &&
                         (!resized_crop || (resized_crop->h == kh && resized_crop->w == kw));
  const bool no_rotation = !angle_deg || std::fmod(*angle_deg, 360.0) == 0.0;
  return full_crop && dx == 0 && dy == 0 && no_rotation;
}

std::string TransformParams::to_string() const {
  std::ostringstream os;
  if (crop) os << "crop[y0=" << crop->y0 << ",x0=" << crop->x0 << ",h=" << crop->h << ",w=" << crop->w << "] ";
  if (resized_crop)
    os << "rcrop[y0=" << resized_crop->y0 << ",x0=" << resized_crop->x0 << ",h=" << resized_crop->h
       << ",w=" << resized_crop->w << "] ";
  if (dx != 0 || dy != 0) os << "translate[dx=" << dx << ",dy=" << dy << "] ";
  if (angle_deg) os << "rotate[" << *angle_deg << "deg" << (nearest ? ",nearest" : "") << "] ";
  std::string s = os.str();
  return s.empty() ? "identity" : s.substr(0, s.size() - 1);
}

CropWindow resized_crop_window(int64_t kh, int64_t kw, double smin, double smax,
                               const std::array<ResizedCropTry, 10>& tries) {
  // torchvision's RandomResizedCrop.get_params; Python's round() is half to even.
  const double area = double(kh * kw);
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (const auto& t : tries) {
    const double target_area = area * (smin + (smax - smin) * t.u_area);
    const double aspect_ratio = std::exp(log_lo + (log_hi - log_lo) * t.u_log_ratio);
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect_ratio)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect_ratio)));
    if (0 < w && w <= kw && 0 < h && h <= kh)
      return {static_cast<int64_t>(t.r_row % static_cast<uint64_t>(kh - h + 1)),
              static_cast<int64_t>(t.r_col % static_cast<uint64_t>(kw - w + 1)), h, w};
  }
  // Fallback: a centre crop of the plane clamped to the ratio range.
  const double in_ratio = double(kw) / double(kh);
  int64_t w = kw, h = kh;
  if (in_ratio < 3.0 / 4.0) {
    h = static_cast<int64_t>(std::nearbyint(double(w) / (3.0 / 4.0)));
  } else if (in_ratio > 4.0 / 3.0) {
    w = static_cast<int64_t>(std::nearbyint(double(h) * (4.0 / 3.0)));
  }
  return {(kh - h) / 2, (kw - w) / 2, h, w};
}

namespace {

// The paper family: every listed transform's numbers are drawn (fixed
// consumption), then exactly one of them, chosen uniformly, is applied.
TransformParams draw_paper_params(const Policy& policy, int64_t kh, int64_t kw, CounterStream& stream) {
  const int listed = int(policy.rcrop.has_value()) + int(policy.translate.has_value()) + int(policy.rotate.has_value());
  const int64_t pick = listed > 0 ? stream.integer(0, listed - 1) : 0;
  int index = 0;
  TransformParams params;
  if (policy.rcrop) {
    const double u_apply = stream.uniform();
    std::array<ResizedCropTry, 10> tries;
    for (auto& t : tries) {
      t.u_area = stream.uniform();
      t.u_log_ratio = stream.uniform();
      t.r_row = stream.next_u64();
      t.r_col = stream.next_u64();
    }
    if (pick == index && u_apply < policy.rcrop->p)
      params.resized_crop = resized_crop_window(kh, kw, policy.rcrop->smin, policy.rcrop->smax, tries);
    ++index;
  }
  if (policy.translate) {
    const double u_apply = stream.uniform();
    const double ux = stream.uniform(-policy.translate->fx * kw, policy.translate->fx * kw);
    const double uy = stream.uniform(-policy.translate->fy * kh, policy.translate->fy * kh);
    if (pick == index && u_apply < policy.translate->p) {
      params.dx = static_cast<int64_t>(std::nearbyint(ux));
      params.dy = static_cast<int64_t>(std::nearbyint(uy));
    }
    ++index;
  }
  if (policy.rotate) {
    const double u_apply = stream.uniform();
    const double a = stream.uniform(policy.rotate->amin, policy.rotate->amax);
    if (pick == index && u_apply < policy.rotate->p) {
      params.angle_deg = a;
      params.nearest = true;
    }
  }
  return params;
}

}  // namespace

TransformParams draw_params(const Policy& policy, int64_t kh, int64_t kw, CounterStream& stream) {
  if (policy.is_paper()) return draw_paper_params(policy, kh, kw, stream);
  TransformParams params;
  if (policy.crop) {  // four numbers, whatever the outcome
    const double u_apply = stream.uniform();
    const double s = stream.uniform(policy.crop->smin, policy.crop->smax);
    const uint64_t ry = stream.next_u64(), rx = stream.next_u64();
    if (u_apply < policy.crop->p) {
      CropWindow win;
      win.h = std::clamp<int64_t>(static_cast<int64_t>(std::round(s * kh)), 1, kh);
      win.w = std::clamp<int64_t>(static_cast<int64_t>(std::round(s * kw)), 1, kw);
      win.y0 = static_cast<int64_t>(ry % static_cast<uint64_t>(kh - win.h + 1));
      win.x0 = static_cast<int64_t>(rx % static_cast<uint64_t>(kw - win.w + 1));
      params.crop = win;
    }
  }
  if (policy.translate) {
    const double u_apply = stream.uniform();
    const double ux = stream.uniform(-policy.translate->fx * kw, policy.translate->fx * kw);
    const double uy = stream.uniform(-policy.translate->fy * kh, policy.translate->fy * kh);
    if (u_apply < policy.translate->p) {
      params.dx = static_cast<int64_t>(std::round(ux));  // half away from zero
      params.dy = static_cast<int64_t>(std::round(uy));
    }
  }
  if (policy.rotate) {
    const double u_apply = stream.uniform();
    const double a = stream.uniform(policy.rotate->amin, policy.rotate->amax);
    if (u_apply < policy.rotate->p) params.angle_deg = a;
  }
  return params;
}

}  // namespace was
