#include "was/transforms.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "was/core/error.h"

namespace was {
namespace {

// Sample positions this close to a tap are that tap: rotations by multiples of
// 90 degrees must be exact permutations despite cos(90°) = 6e-17.
constexpr double kSnap = 1e-9;

// A dense kk x kk matrix in row-major order; the planes are tiny (9 or 25
// taps), so plain loops beat a tensor op per element by far.
using PlaneMatrix = std::vector<double>;

PlaneMatrix identity_plane(int64_t kk) {
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t i = 0; i < kk; ++i) m[i * kk + i] = 1.0;
  return m;
}

PlaneMatrix multiply(const PlaneMatrix& a, const PlaneMatrix& b, int64_t kk) {
  PlaneMatrix c(kk * kk, 0.0);
  for (int64_t i = 0; i < kk; ++i)
    for (int64_t k = 0; k < kk; ++k) {
      const double aik = a[i * kk + k];
      if (aik == 0.0) continue;
      for (int64_t j = 0; j < kk; ++j) c[i * kk + j] += aik * b[k * kk + j];
    }
  return c;
}

PlaneMatrix crop_plane(int64_t kh, int64_t kw, const CropWindow& win) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t y = win.y0; y < win.y0 + win.h; ++y)
    for (int64_t x = win.x0; x < win.x0 + win.w; ++x) m[(y * kw + x) * kk + (y * kw + x)] = 1.0;
  return m;
}

PlaneMatrix translate_plane(int64_t kh, int64_t kw, int64_t dx, int64_t dy) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x) {
      const int64_t sy = y - dy, sx = x - dx;  // S[y, x] = W[y-dy, x-dx]
      if (sy >= 0 && sy < kh && sx >= 0 && sx < kw) m[(y * kw + x) * kk + (sy * kw + sx)] = 1.0;
    }
  return m;
}

double snap(double v) {
  const double r = std::round(v);
  return std::abs(v - r) < kSnap ? r : v;
}

PlaneMatrix rotate_plane(int64_t kh, int64_t kw, double angle_deg, bool nearest) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  const double a = angle_deg * M_PI / 180.0;
  const double c = std::cos(a), s = std::sin(a);
  const double cx = (kw - 1) / 2.0, cy = (kh - 1) / 2.0;
  for (int64_t row = 0; row < kh; ++row)
    for (int64_t col = 0; col < kw; ++col) {
      // Inverse mapping in centred coordinates (WAS-SPEC §3 rotate).
      const double x = col - cx, y = row - cy;
      const double src_col = snap(c * x - s * y + cx);
      const double src_row = snap(s * x + c * y + cy);
      if (nearest) {  // grid_sample's nearest: round half to even
        const auto r = static_cast<int64_t>(std::nearbyint(src_row)), q = static_cast<int64_t>(std::nearbyint(src_col));
        if (r >= 0 && r < kh && q >= 0 && q < kw) m[(row * kw + col) * kk + (r * kw + q)] = 1.0;
        continue;
      }
      const double c0 = std::floor(src_col), r0 = std::floor(src_row);
      const double fc = src_col - c0, fr = src_row - r0;
      const double taps[4][3] = {{r0, c0, (1 - fr) * (1 - fc)},
                                 {r0, c0 + 1, (1 - fr) * fc},
                                 {r0 + 1, c0, fr * (1 - fc)},
                                 {r0 + 1, c0 + 1, fr * fc}};
      for (const auto& t : taps) {
        if (t[2] == 0.0) continue;
        const auto r = static_cast<int64_t>(t[0]), q = static_cast<int64_t>(t[1]);
        if (r < 0 || r >= kh || q < 0 || q >= kw) continue;  // zeros outside
        m[(row * kw + col) * kk + (r * kw + q)] += t[2];
      }
    }
  return m;
}

// torch's upsample_bilinear2d (align_corners=False) of a window to kh x kw:
// source = (out + 0.5) * in / out - 0.5, clamped at 0; the upper tap clamped
// to the window.
PlaneMatrix resized_crop_plane(int64_t kh, int64_t kw, const CropWindow& win) {
  const int64_t kk = kh * kw;
  PlaneMatrix m(kk * kk, 0.0);
  const auto source = [](int64_t out, int64_t in_size, int64_t out_size, int64_t& i0, int64_t& i1, double& frac) {
    const double src = std::max(0.0, (double(out) + 0.5) * double(in_size) / double(out_size) - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in_size - 1);
    i1 = std::min<int64_t>(i0 + 1, in_size - 1);
    frac = src - double(i0);
  };
  for (int64_t y = 0; y < kh; ++y) {
    int64_t y0, y1;
    double fy;
    source(y, win.h, kh, y0, y1, fy);
    for (int64_t x = 0; x < kw; ++x) {
      int64_t x0, x1;
      double fx;
      source(x, win.w, kw, x0, x1, fx);
      const int64_t taps[4][2] = {{y0, x0}, {y0, x1}, {y1, x0}, {y1, x1}};
      const double weights[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx};
      for (int t = 0; t < 4; ++t)
        if (weights[t] != 0.0)
          m[(y * kw + x) * kk + ((win.y0 + taps[t][0]) * kw + (win.x0 + taps[t][1]))] += weights[t];
    }
  }
  return m;
}

PlaneMatrix compose_plane(const TransformParams& p, int64_t kh, int64_t kw) {
  const int64_t kk = kh * kw;
  PlaneMatrix m = p.crop ? crop_plane(kh, kw, *p.crop) : identity_plane(kk);
  if (p.resized_crop) m = multiply(resized_crop_plane(kh, kw, *p.resized_crop), m, kk);
  if (p.dx != 0 || p.dy != 0) m = multiply(translate_plane(kh, kw, p.dx, p.dy), m, kk);
  if (p.angle_deg) m = multiply(rotate_plane(kh, kw, *p.angle_deg, p.nearest), m, kk);
  return m;
}

void check_window(int64_t kh, int64_t kw, const CropWindow& window, const char* what) {
  if (window.h < 1 || window.w < 1 || window.y0 < 0 || window.x0 < 0 || window.y0 + window.h > kh ||
      window.x0 + window.w > kw)
    throw Error(std::string(what) + " window [y0=" + std::to_string(window.y0) + ",x0=" + std::to_string(window.x0) +
                ",h=" + std::to_string(window.h) + ",w=" + std::to_string(window.w) + "] is outside a " +
                std::to_string(kh) + "x" + std::to_string(kw) + " plane");
}

torch::Tensor to_tensor(const PlaneMatrix& m, int64_t kk) {
  return torch::from_blob(const_cast<double*>(m.data()), {kk, kk}, torch::kFloat64).clone();
}

void check_plane(int64_t kh, int64_t kw) {
  if (kh < 1 || kw < 1)
    throw Error("kernel plane must be at least 1x1, got " + std::to_string(kh) + "x" + std::to_string(kw));
}

// Shortest text that reads back as the same double.
std::string format_number(double v) {
  for (int precision : {6, 10, 15, 17}) {
    std::ostringstream os;
    os.precision(precision);
    os << v;
    if (std::strtod(os.str().c_str(), nullptr) == v) return os.str();
  }
  return std::to_string(v);
}

double parse_number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw Error("policy: '" + text + "' is not a number (in " + what + ")",
                "write numbers like 0.8, e.g. crop=0.8:1.0");
  return v;
}

std::pair<double, double> parse_range(const std::string& text, const std::string& what) {
  const auto colon = text.find(':');
  if (colon == std::string::npos)
    throw Error("policy: " + what + " needs a range LOW:HIGH, got '" + text + "'",
                "e.g. crop=0.8:1.0, translate=0.3:0.3, rotate=0:90");
  return {parse_number(text.substr(0, colon), what), parse_number(text.substr(colon + 1), what)};
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream is(text);
  while (std::getline(is, cur, sep)) parts.push_back(cur);
  return parts;
}

void check_probability(double p, const std::string& what) {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error("policy: probability of " + what + " must be in [0, 1], got " + format_number(p),
                "e.g. crop=0.8:1.0@p=0.5");
}

}  // namespace

// --- Policy ------------------------------------------------------------------

void Policy::validate() const {
  if (crop && is_paper())
    throw Error("policy: the paper family crops by resizing, it has no crop=",
                "write paper:rcrop=SMIN:SMAX (torchvision's RandomResizedCrop), e.g. paper:rcrop=0.8:1.0");
  if (rcrop && !is_paper())
    throw Error("policy: rcrop (the released code's resized crop) belongs to the paper family",
                "write paper:rcrop=" + format_number(rcrop->smin) + ":" + format_number(rcrop->smax));
  if (gain && !is_paper())
    throw Error("policy: the learnable gain belongs to the paper family", "write paper:... (e.g. paper:CT)");
  if (rcrop) {
    if (!(rcrop->smin > 0.0 && rcrop->smin <= rcrop->smax && rcrop->smax <= 1.0))
      throw Error("policy: rcrop area fraction must satisfy 0 < smin <= smax <= 1, got rcrop=" +
                      format_number(rcrop->smin) + ":" + format_number(rcrop->smax),
                  "a fraction of the plane's area, in (0, 1], e.g. paper:rcrop=0.8:1.0");
    check_probability(rcrop->p, "rcrop");
  }
  if (crop) {
    if (!(crop->smin > 0.0 && crop->smin <= crop->smax && crop->smax <= 1.0))
      throw Error("policy: crop ratio must satisfy 0 < smin <= smax <= 1, got crop=" + format_number(crop->smin) + ":" +
                      format_number(crop->smax),
                  "a ratio is the kept fraction of each kernel side, e.g. crop=0.8:1.0");
    check_probability(crop->p, "crop");
  }
  if (translate) {
    if (!(translate->fx >= 0.0 && translate->fx <= 1.0 && translate->fy >= 0.0 && translate->fy <= 1.0))
      throw Error("policy: translate fractions must be in [0, 1], got translate=" + format_number(translate->fx) + ":" +
                      format_number(translate->fy),
                  "a fraction of the kernel side, e.g. translate=0.3:0.3");
    check_probability(translate->p, "translate");
  }
  if (rotate) {
    if (!(std::isfinite(rotate->amin) && std::isfinite(rotate->amax) && rotate->amin <= rotate->amax))
      throw Error("policy: rotate needs amin <= amax (degrees), got rotate=" + format_number(rotate->amin) + ":" +
                      format_number(rotate->amax),
                  "e.g. rotate=0:90");
    check_probability(rotate->p, "rotate");
  }
}

std::string Policy::to_string() const {
  std::vector<std::string> parts;
  auto with_p = [](std::string s, double p) { return p == 1.0 ? s : s + "@p=" + format_number(p); };
  if (crop) parts.push_back(with_p("crop=" + format_number(crop->smin) + ":" + format_number(crop->smax), crop->p));
  if (rcrop)
    parts.push_back(with_p("rcrop=" + format_number(rcrop->smin) + ":" + format_number(rcrop->smax), rcrop->p));
  if (translate)
    parts.push_back(
        with_p("translate=" + format_number(translate->fx) + ":" + format_number(translate->fy), translate->p));
  if (rotate)
    parts.push_back(with_p("rotate=" + format_number(rotate->amin) + ":" + format_number(rotate->amax), rotate->p));
  if (parts.empty()) return "none";
  if (granularity == Granularity::kFilter) parts.push_back("granularity=filter");
  if (!exclude.empty()) {
    std::string ex = "exclude=";
    for (size_t i = 0; i < exclude.size(); ++i) ex += (i ? ":" : "") + exclude[i];
    parts.push_back(ex);
  }
  if (is_paper() && !gain) parts.push_back("gain=off");
  std::string out = is_paper() ? "paper:" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
  return out;
}

Policy Policy::preset(const std::string& name_in) {
  std::string name = name_in;
  if (!name.empty() && name[0] == '-') name = name.substr(1);
  std::string upper;
  for (char ch : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Policy p;
  if (upper == "NONE" || upper == "BASELINE") return p;
  if (upper.empty() || upper.find_first_not_of("CTR") != std::string::npos)
    throw Error("policy: unknown preset '" + name_in + "'",
                "presets are C, T, R, CT, CTR (or none); or give transforms, e.g. crop=0.8:1.0,translate=0.3:0.3");
  for (char ch : upper) {
    if (ch == 'C') p.crop = CropRange{0.8, 1.0, 1.0};
    if (ch == 'T') p.translate = TranslateRange{0.3, 0.3, 1.0};
    if (ch == 'R') p.rotate = RotateRange{0.0, 90.0, 1.0};
  }
  return p;
}

Policy Policy::paper_preset(const std::string& name_in) {
  std::string upper;
  for (char ch : name_in) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Policy p;
  p.family = Family::kPaper;
  p.gain = true;
  if (upper == "NONE" || upper == "BASELINE") return Policy{};
  if (upper.empty() || upper.find_first_not_of("CTR") != std::string::npos)
    throw Error("policy: unknown paper preset 'paper:" + name_in + "'",
                "paper presets are paper:C, paper:T, paper:R, paper:CT, paper:CTR; or transforms, e.g. "
                "paper:rcrop=0.6:0.8,translate=0.3:0.3");
  // The released code's ranges: RandomResizedCrop(scale=(0.8, 1.0)),
  // RandomAffine(translate=(0.3, 0.3)), RandomRotation(90) = (-90, 90).
  for (char ch : upper) {
    if (ch == 'C') p.rcrop = ResizedCropRange{0.8, 1.0, 1.0};
    if (ch == 'T') p.translate = TranslateRange{0.3, 0.3, 1.0};
    if (ch == 'R') p.rotate = RotateRange{-90.0, 90.0, 1.0};
  }
  return p;
}

Policy Policy::parse(const std::string& text_in) {
  Policy policy;
  if (text_in.empty()) throw Error("policy: empty --was value", "use none, a preset (C, T, R, CT, CTR) or transforms");
  std::string text = text_in;
  const bool paper = text.rfind("paper:", 0) == 0;
  if (paper) {
    text = text.substr(6);
    policy.family = Family::kPaper;
    policy.gain = true;
    if (text.empty())
      throw Error("policy: 'paper:' needs a preset or transforms", "e.g. paper:CT or paper:rcrop=0.8:1.0");
  }
  for (const std::string& token : split(text, ',')) {
    if (token.empty()) continue;
    // A trailing @p=X sets the probability of the transform(s) of this token.
    std::string body = token;
    std::optional<double> prob;
    if (const auto at = token.find('@'); at != std::string::npos) {
      body = token.substr(0, at);
      const std::string suffix = token.substr(at + 1);
      if (suffix.rfind("p=", 0) != 0)
        throw Error("policy: unknown modifier '@" + suffix + "'", "the only modifier is @p=PROBABILITY");
      prob = parse_number(suffix.substr(2), "probability");
    }
    const auto eq = body.find('=');
    if (eq == std::string::npos) {  // a preset
      const Policy preset = paper ? Policy::paper_preset(body) : Policy::preset(body);
      if (preset.crop) policy.crop = preset.crop;
      if (preset.rcrop) policy.rcrop = preset.rcrop;
      if (preset.translate) policy.translate = preset.translate;
      if (preset.rotate) policy.rotate = preset.rotate;
      if (prob) {
        if (preset.crop) policy.crop->p = *prob;
        if (preset.rcrop) policy.rcrop->p = *prob;
        if (preset.translate) policy.translate->p = *prob;
        if (preset.rotate) policy.rotate->p = *prob;
      }
      continue;
    }
    const std::string key = body.substr(0, eq), value = body.substr(eq + 1);
    if (key == "crop") {
      auto [a, b] = parse_range(value, "crop");
      policy.crop = CropRange{a, b, prob.value_or(1.0)};
    } else if (key == "rcrop") {
      auto [a, b] = parse_range(value, "rcrop");
      policy.rcrop = ResizedCropRange{a, b, prob.value_or(1.0)};
    } else if (key == "gain" && paper) {
      if (value == "on")
        policy.gain = true;
      else if (value == "off")
        policy.gain = false;
      else
        throw Error("policy: gain must be on or off, got '" + value + "'");
    } else if (key == "translate") {
      auto [a, b] = parse_range(value, "translate");
      policy.translate = TranslateRange{a, b, prob.value_or(1.0)};
    } else if (key == "rotate") {
      auto [a, b] = parse_range(value, "rotate");
      policy.rotate = RotateRange{a, b, prob.value_or(1.0)};
    } else if (key == "granularity") {
      if (value == "layer")
        policy.granularity = Granularity::kLayer;
      else if (value == "filter")
        policy.granularity = Granularity::kFilter;
      else
        throw Error("policy: granularity must be layer or filter, got '" + value + "'");
    } else if (key == "exclude") {
      for (auto& name : split(value, ':'))
        if (!name.empty()) policy.exclude.push_back(name);
    } else {
      throw Error("policy: unknown key '" + key + "' in '" + token + "'",
                  paper ? "paper keys are rcrop, translate, rotate, granularity, exclude, gain; presets C, T, R, CT"
                        : "keys are crop, translate, rotate, granularity, exclude; presets C, T, R, CT, CTR; "
                          "paper:... for the released code's family");
    }
  }
  policy.validate();
  return policy;
}

bool operator==(const Policy& a, const Policy& b) { return a.to_string() == b.to_string(); }

// --- draws -------------------------------------------------------------------

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

// --- matrices ----------------------------------------------------------------

torch::Tensor crop_matrix(int64_t kh, int64_t kw, const CropWindow& window) {
  check_plane(kh, kw);
  check_window(kh, kw, window, "crop");
  return to_tensor(crop_plane(kh, kw, window), kh * kw);
}

torch::Tensor resized_crop_matrix(int64_t kh, int64_t kw, const CropWindow& window) {
  check_plane(kh, kw);
  check_window(kh, kw, window, "rcrop");
  return to_tensor(resized_crop_plane(kh, kw, window), kh * kw);
}

torch::Tensor translate_matrix(int64_t kh, int64_t kw, int64_t dx, int64_t dy) {
  check_plane(kh, kw);
  return to_tensor(translate_plane(kh, kw, dx, dy), kh * kw);
}

torch::Tensor rotate_matrix(int64_t kh, int64_t kw, double angle_deg, bool nearest) {
  check_plane(kh, kw);
  return to_tensor(rotate_plane(kh, kw, angle_deg, nearest), kh * kw);
}

torch::Tensor transform_matrix(const TransformParams& params, int64_t kh, int64_t kw) {
  check_plane(kh, kw);
  if (params.crop) check_window(kh, kw, *params.crop, "crop");
  if (params.resized_crop) check_window(kh, kw, *params.resized_crop, "rcrop");
  return to_tensor(compose_plane(params, kh, kw), kh * kw);
}

namespace {

// S = A W on the CPU as one pass over the planes: each output plane is the sum
// over the input taps i of W[r, i] times column i of A, a 16-lane vector (one
// FMA per tap with AVX-512), and the taps whose column is all zero (most of
// them under a crop) are skipped. BLAS runs the same [rows, 9] x [9, 9] product
// 1.6-1.7x slower (forward + backward, bench/train_step_bench.cpp): the
// matrices are too thin for its blocking.
constexpr int64_t kLanes = 16;  // planes of up to 4x4 taps

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define WAS_PLANE_KERNEL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WAS_PLANE_KERNEL_CLONES
#endif

// kLanes values of T as one vector (GCC/Clang vector extension: a zmm register
// in the AVX-512 clone, two ymm or four xmm registers in the others), loaded
// and stored with memcpy: vectors need not be aligned.
template <typename T>
struct LaneVector;
template <>
struct LaneVector<float> {
  typedef float type __attribute__((vector_size(kLanes * sizeof(float))));
};
template <>
struct LaneVector<double> {
  typedef double type __attribute__((vector_size(kLanes * sizeof(double))));
};

// A's non-zero columns, per group (the layer, or one filter): tap index and
// the column padded to kLanes.
template <typename T>
struct PlaneColumns {
  using Vec = typename LaneVector<T>::type;
  int64_t groups = 0, kk = 0;
  std::vector<int64_t> begin;  // [groups + 1] into tap/column
  std::vector<int64_t> tap;
  std::vector<T> column;  // kLanes values per entry
};

template <typename T>
PlaneColumns<T> plane_columns(const torch::Tensor& a, bool transpose) {
  const auto m = a.to(torch::kCPU, torch::kFloat64).contiguous();
  PlaneColumns<T> c;
  c.groups = m.dim() == 2 ? 1 : m.size(0);
  c.kk = m.size(-1);
  const double* v = m.data_ptr<double>();
  for (int64_t g = 0; g < c.groups; ++g) {
    c.begin.push_back(static_cast<int64_t>(c.tap.size()));
    const double* mg = v + g * c.kk * c.kk;
    for (int64_t i = 0; i < c.kk; ++i) {
      std::array<T, kLanes> col{};
      bool any = false;
      for (int64_t j = 0; j < c.kk; ++j) {
        col[j] = static_cast<T>(transpose ? mg[i * c.kk + j] : mg[j * c.kk + i]);  // S[j] += A[j][i] W[i]
        any = any || col[j] != T(0);
      }
      if (!any) continue;
      c.tap.push_back(i);
      c.column.insert(c.column.end(), col.begin(), col.end());
    }
  }
  c.begin.push_back(static_cast<int64_t>(c.tap.size()));
  return c;
}

// Planes [first, last) of x into y, four at a time (four independent chains
// of FMAs instead of one). A plane stores a full vector of kLanes values,
// spilling into the planes after it, which are written later, as long as the
// spill stays inside the range; the last planes store only their kk values,
// so no other thread's range is touched.
template <typename T>
WAS_PLANE_KERNEL_CLONES void transform_planes(const T* __restrict x, T* __restrict y, int64_t first, int64_t last,
                                              int64_t planes_per_group, const PlaneColumns<T>& c) {
  using Vec = typename PlaneColumns<T>::Vec;
  const int64_t kk = c.kk;
  const int64_t spill_end = last - (kLanes + kk - 1) / kk;  // planes before it may store kLanes values
  // A macro, not a lambda: a lambda would not be compiled for the clone's target.
#define WAS_STORE_PLANE(r, v) std::memcpy(y + (r)*kk, &(v), ((r) < spill_end ? kLanes : kk) * sizeof(T))
  for (int64_t r = first; r < last;) {
    const int64_t g = r / planes_per_group, group_end = std::min(last, (g + 1) * planes_per_group);
    const int64_t count = c.begin[g + 1] - c.begin[g];
    const int64_t* __restrict taps = c.tap.data() + c.begin[g];
    const T* __restrict columns = c.column.data() + c.begin[g] * kLanes;
    for (; r + 4 <= group_end; r += 4) {
      const T* in = x + r * kk;
      Vec a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t e = 0; e < count; ++e) {
        Vec col;
        std::memcpy(&col, columns + e * kLanes, sizeof(Vec));
        const int64_t t = taps[e];
        a0 += in[t] * col;
        a1 += in[kk + t] * col;
        a2 += in[2 * kk + t] * col;
        a3 += in[3 * kk + t] * col;
      }
      WAS_STORE_PLANE(r, a0);
      WAS_STORE_PLANE(r + 1, a1);
      WAS_STORE_PLANE(r + 2, a2);
      WAS_STORE_PLANE(r + 3, a3);
    }
    for (; r < group_end; ++r) {
      const T* in = x + r * kk;
      Vec acc = {};
      for (int64_t e = 0; e < count; ++e) {
        Vec col;
        std::memcpy(&col, columns + e * kLanes, sizeof(Vec));
        acc += in[taps[e]] * col;
      }
      WAS_STORE_PLANE(r, acc);
    }
  }
#undef WAS_STORE_PLANE
}

torch::Tensor transform_planes_cpu(const torch::Tensor& input, const torch::Tensor& a, bool transpose) {
  RECORD_FUNCTION(transpose ? "was::plane_transform_backward" : "was::plane_transform", std::vector<c10::IValue>{});
  const auto in = input.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "transform_planes", [&] {
    const auto columns = plane_columns<scalar_t>(a, transpose);
    const int64_t planes = in.numel() / columns.kk, per_group = planes / columns.groups;
    const scalar_t* x = in.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    at::parallel_for(0, planes, 8192, [&](int64_t first, int64_t last) {
      transform_planes<scalar_t>(x, y, first, last, per_group, columns);
    });
  });
  return out;
}

// The CPU path as an autograd function: dL/dW = A^T dL/dS (paper eq. 6).
struct PlaneTransformCpu : public torch::autograd::Function<PlaneTransformCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& weight,
                               const torch::Tensor& a) {
    ctx->saved_data["a"] = a;
    return transform_planes_cpu(weight, a, false);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    return {transform_planes_cpu(grad[0], ctx->saved_data["a"].toTensor(), true), torch::Tensor()};
  }
};

void check_plane_matrices(const torch::Tensor& weight, const torch::Tensor& a) {
  TORCH_CHECK(weight.dim() == 4, "apply_plane_transform: weight must be [O, I, kh, kw], got ", weight.sizes());
  const int64_t out = weight.size(0), kk = weight.size(2) * weight.size(3);
  if (a.dim() == 2) {
    TORCH_CHECK(a.size(0) == kk && a.size(1) == kk, "apply_plane_transform: matrix ", a.sizes(),
                " does not fit a plane of ", kk, " taps");
  } else {
    TORCH_CHECK(a.dim() == 3 && a.size(0) == out && a.size(1) == kk && a.size(2) == kk,
                "apply_plane_transform: per-filter matrices must be [", out, ", ", kk, ", ", kk, "], got ", a.sizes());
  }
}

}  // namespace

torch::Tensor apply_plane_transform(const torch::Tensor& weight, const torch::Tensor& a) {
  check_plane_matrices(weight, a);
  const bool float_cpu =
      weight.device().is_cpu() && (weight.scalar_type() == torch::kFloat || weight.scalar_type() == torch::kDouble);
  if (float_cpu && weight.size(2) * weight.size(3) <= kLanes) return PlaneTransformCpu::apply(weight, a.detach());
  return apply_dense_plane_transform(weight, a);
}

torch::Tensor apply_dense_plane_transform(const torch::Tensor& weight, const torch::Tensor& a) {
  check_plane_matrices(weight, a);
  const int64_t out = weight.size(0), kk = weight.size(2) * weight.size(3);
  const auto m = a.to(weight.device(), weight.scalar_type());
  if (m.dim() == 2) return weight.reshape({-1, kk}).matmul(m.t()).view(weight.sizes());
  return torch::bmm(weight.reshape({out, -1, kk}), m.transpose(1, 2)).view(weight.sizes());
}

torch::Tensor apply_transform(const torch::Tensor& weight, const TransformParams& params) {
  return apply_plane_transform(weight, transform_matrix(params, weight.size(2), weight.size(3)));
}

torch::Tensor apply_transform(const torch::Tensor& weight, const std::vector<TransformParams>& per_filter) {
  const int64_t out = weight.size(0), kh = weight.size(2), kw = weight.size(3), kk = kh * kw;
  TORCH_CHECK(static_cast<int64_t>(per_filter.size()) == out, "apply_transform: ", per_filter.size(),
              " parameter sets for ", out, " filters");
  auto stacked = torch::empty({out, kk, kk}, torch::kFloat64);
  auto* dst = stacked.data_ptr<double>();
  for (int64_t o = 0; o < out; ++o) {
    if (per_filter[o].crop) check_window(kh, kw, *per_filter[o].crop, "crop");
    if (per_filter[o].resized_crop) check_window(kh, kw, *per_filter[o].resized_crop, "rcrop");
    const PlaneMatrix m = compose_plane(per_filter[o], kh, kw);
    std::copy(m.begin(), m.end(), dst + o * kk * kk);
  }
  return apply_plane_transform(weight, stacked);
}

}  // namespace was
