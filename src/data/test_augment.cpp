#include "was/data/test_augment.h"

#include <algorithm>
#include <cmath>

#include "was/core/error.h"
#include "was/core/rng.h"

namespace was::data {
namespace {

double parse_number(const std::string& text, const std::string& spec) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw Error("test-time augmentation '" + spec + "': '" + text + "' is not a number",
              "write the range as a:b, e.g. rotate=0:45");
}

std::string format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

TestAugmentation TestAugmentation::parse(const std::string& kind, const std::string& range) {
  const std::string spec = kind + "=" + range;
  TestAugmentation t;
  if (kind == "rotate")
    t.kind = Kind::kRotate;
  else if (kind == "translate")
    t.kind = Kind::kTranslate;
  else if (kind == "crop")
    t.kind = Kind::kCrop;
  else
    throw Error("unknown test-time augmentation '" + kind + "'",
                "use rotate=amin:amax, translate=fx:fy or crop=smin:smax");
  const auto colon = range.find(':');
  if (colon == std::string::npos)
    throw Error("test-time augmentation '" + spec + "' needs a range a:b",
                "e.g. " + kind + "=" +
                    (t.kind == Kind::kRotate      ? "0:45"
                     : t.kind == Kind::kTranslate ? "0.1:0.1"
                                                  : "0.5:1"));
  t.lo = parse_number(range.substr(0, colon), spec);
  t.hi = parse_number(range.substr(colon + 1), spec);
  switch (t.kind) {
    case Kind::kRotate:
      if (t.lo > t.hi) throw Error("rotate=" + range + ": amin must not exceed amax");
      break;
    case Kind::kTranslate:
      if (t.lo < 0 || t.lo > 1 || t.hi < 0 || t.hi > 1)
        throw Error("translate=" + range + ": fx and fy must lie in [0, 1]");
      break;
    case Kind::kCrop:
      if (!(t.lo > 0 && t.lo <= t.hi && t.hi <= 1))
        throw Error("crop=" + range + ": needs 0 < smin <= smax <= 1", "e.g. crop=0.5:1");
      break;
  }
  return t;
}

TestAugmentation TestAugmentation::parse(const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos)
    throw Error("test-time augmentation '" + spec + "' is not of the form kind=a:b",
                "use rotate=amin:amax, translate=fx:fy or crop=smin:smax");
  return parse(spec.substr(0, eq), spec.substr(eq + 1));
}

std::string TestAugmentation::kind_name() const {
  switch (kind) {
    case Kind::kRotate:
      return "rotate";
    case Kind::kTranslate:
      return "translate";
    case Kind::kCrop:
      return "crop";
  }
  return "?";
}

std::string TestAugmentation::to_string() const { return kind_name() + "=" + format(lo) + ":" + format(hi); }

double TestAugmentation::strength() const {
  switch (kind) {
    case Kind::kRotate:
      return std::max(std::abs(lo), std::abs(hi));
    case Kind::kTranslate:
      return std::max(lo, hi);
    case Kind::kCrop:
      return 1.0 - lo;
  }
  return 0.0;
}

TestAugmentParams draw_test_augmentation(const TestAugmentation& a, uint64_t seed, int64_t index, int64_t height,
                                         int64_t width) {
  CounterStream rng(seed, StreamDomain::kTestAugment, static_cast<uint64_t>(a.kind), static_cast<uint64_t>(index));
  TestAugmentParams p;
  p.crop_h = height;
  p.crop_w = width;
  switch (a.kind) {
    case TestAugmentation::Kind::kRotate:
      p.degrees = rng.uniform(a.lo, a.hi);
      break;
    case TestAugmentation::Kind::kTranslate:
      p.dx = static_cast<int64_t>(std::round(rng.uniform(-a.lo * double(width), a.lo * double(width))));
      p.dy = static_cast<int64_t>(std::round(rng.uniform(-a.hi * double(height), a.hi * double(height))));
      break;
    case TestAugmentation::Kind::kCrop: {
      const double side = std::sqrt(rng.uniform(a.lo, a.hi));
      p.crop_h = std::clamp<int64_t>(static_cast<int64_t>(std::round(side * double(height))), 1, height);
      p.crop_w = std::clamp<int64_t>(static_cast<int64_t>(std::round(side * double(width))), 1, width);
      p.y0 = rng.integer(0, height - p.crop_h);
      p.x0 = rng.integer(0, width - p.crop_w);
      break;
    }
  }
  return p;
}

torch::Tensor apply_test_augmentation(const torch::Tensor& images_u8, const TestAugmentation& a,
                                      const std::vector<TestAugmentParams>& params) {
  if (!images_u8.defined() || images_u8.scalar_type() != torch::kByte || images_u8.dim() != 4)
    throw Error("apply_test_augmentation: images must be uint8 [N, C, H, W]");
  const int64_t n = images_u8.size(0), h = images_u8.size(2), w = images_u8.size(3);
  if (static_cast<int64_t>(params.size()) != n)
    throw Error("apply_test_augmentation: " + std::to_string(params.size()) + " parameter sets for " +
                std::to_string(n) + " images");
  if (n == 0) return images_u8.clone();
  namespace F = torch::nn::functional;
  const auto to_u8 = [](const torch::Tensor& x) { return x.round().clamp(0, 255).to(torch::kByte); };
  switch (a.kind) {
    case TestAugmentation::Kind::kRotate: {
      // Inverse mapping in centred pixel coordinates, as the kernel rotation
      // of WAS-SPEC §3: output (x, y) reads (cos a x - sin a y, sin a x + cos a y).
      // With align_corners, grid -1..1 spans the first to the last pixel centre.
      const auto opts = torch::TensorOptions().dtype(torch::kDouble);
      const auto xs = (torch::arange(w, opts) - double(w - 1) / 2).view({1, 1, w});
      const auto ys = (torch::arange(h, opts) - double(h - 1) / 2).view({1, h, 1});
      std::vector<double> angles;
      for (const auto& p : params) angles.push_back(p.degrees * M_PI / 180.0);
      const auto rad = torch::tensor(angles, opts).view({n, 1, 1});
      const auto c = torch::cos(rad), s = torch::sin(rad);
      const auto src_x = c * xs - s * ys, src_y = s * xs + c * ys;  // [N, H, W]
      const auto gx = w > 1 ? src_x / (double(w - 1) / 2) : src_x;
      const auto gy = h > 1 ? src_y / (double(h - 1) / 2) : src_y;
      const auto grid = torch::stack({gx, gy}, 3).to(torch::kFloat).to(images_u8.device());
      const auto out = F::grid_sample(
          images_u8.to(torch::kFloat), grid,
          F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
      return to_u8(out);
    }
    case TestAugmentation::Kind::kTranslate: {
      auto out = torch::zeros_like(images_u8);
      for (int64_t i = 0; i < n; ++i) {
        const auto& p = params[static_cast<size_t>(i)];
        // Destination rows/cols [d0, d1) read source [d0 - dy, d1 - dy).
        const int64_t y0 = std::max<int64_t>(0, p.dy), y1 = std::min<int64_t>(h, h + p.dy);
        const int64_t x0 = std::max<int64_t>(0, p.dx), x1 = std::min<int64_t>(w, w + p.dx);
        if (y0 >= y1 || x0 >= x1) continue;
        out[i].slice(1, y0, y1).slice(2, x0, x1).copy_(
            images_u8[i].slice(1, y0 - p.dy, y1 - p.dy).slice(2, x0 - p.dx, x1 - p.dx));
      }
      return out;
    }
    case TestAugmentation::Kind::kCrop: {
      auto out = torch::empty_like(images_u8);
      for (int64_t i = 0; i < n; ++i) {
        const auto& p = params[static_cast<size_t>(i)];
        if (p.crop_h < 1 || p.crop_w < 1 || p.y0 < 0 || p.x0 < 0 || p.y0 + p.crop_h > h || p.x0 + p.crop_w > w)
          throw Error("apply_test_augmentation: crop window of image " + std::to_string(i) + " outside the image");
        const auto window = images_u8[i].slice(1, p.y0, p.y0 + p.crop_h).slice(2, p.x0, p.x0 + p.crop_w);
        const auto resized = F::interpolate(
            window.unsqueeze(0).to(torch::kFloat),
            F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
        out[i].copy_(to_u8(resized[0]));
      }
      return out;
    }
  }
  return images_u8.clone();
}

Dataset augment_dataset(const Dataset& data, const TestAugmentation& augmentation, uint64_t seed) {
  data.check("test-time augmentation input");
  std::vector<TestAugmentParams> params;
  params.reserve(static_cast<size_t>(data.size()));
  for (int64_t i = 0; i < data.size(); ++i)
    params.push_back(draw_test_augmentation(augmentation, seed, i, data.height(), data.width()));
  Dataset out = data;
  out.images = apply_test_augmentation(data.images, augmentation, params).contiguous();
  return out;
}

std::vector<TestAugmentation> paper_sweep(TestAugmentation::Kind kind) {
  using K = TestAugmentation::Kind;
  std::vector<TestAugmentation> out;
  switch (kind) {
    case K::kRotate:
      for (double a : {15.0, 45.0, 90.0, 135.0, 180.0}) out.push_back({K::kRotate, 0.0, a});
      break;
    case K::kTranslate:
      for (double f : {0.1, 0.2, 0.3, 0.4}) out.push_back({K::kTranslate, f, f});
      break;
    case K::kCrop:
      out = {{K::kCrop, 0.8, 1.0}, {K::kCrop, 0.6, 0.8}, {K::kCrop, 0.4, 0.6}, {K::kCrop, 0.2, 0.4}};
      break;
  }
  return out;
}

}  // namespace was::data
