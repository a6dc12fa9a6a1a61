// WAS-SPEC §3: each transform on hand-worked kernels, linearity and adjoint.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "was/core/error.h"
#include "was/transforms.h"

namespace {

using was::CropWindow;
using was::Policy;
using was::TransformParams;

// 1..k*k laid out row-major as a [1, 1, kh, kw] kernel.
torch::Tensor counting_kernel(int64_t kh, int64_t kw) {
  return torch::arange(1, kh * kw + 1, torch::kFloat64).view({1, 1, kh, kw});
}

torch::Tensor plane(std::vector<double> values, int64_t kh, int64_t kw) {
  return torch::tensor(values, torch::kFloat64).view({1, 1, kh, kw});
}

TEST(TransformTest, CropKeepsTheWindowAndZerosTheRest) {
  const auto w = counting_kernel(3, 3);
  TransformParams p;
  p.crop = CropWindow{0, 1, 2, 2};  // rows 0-1, columns 1-2
  const auto s = was::apply_transform(w, p);
  EXPECT_TRUE(torch::equal(s, plane({0, 2, 3, 0, 5, 6, 0, 0, 0}, 3, 3)));
}

TEST(TransformTest, CropWindowTouchingTheBottomLeftCorner) {
  const auto w = counting_kernel(5, 5);
  TransformParams p;
  p.crop = CropWindow{3, 0, 2, 3};
  const auto s = was::apply_transform(w, p);
  auto expected = torch::zeros_like(w);
  expected.index_put_({0, 0, torch::indexing::Slice(3, 5), torch::indexing::Slice(0, 3)},
                      w.index({0, 0, torch::indexing::Slice(3, 5), torch::indexing::Slice(0, 3)}));
  EXPECT_TRUE(torch::equal(s, expected));
}

TEST(TransformTest, TranslateMovesContentAndZeroFills) {
  const auto w = counting_kernel(3, 3);
  TransformParams right;
  right.dx = 1;  // content moves right, left column becomes 0
  EXPECT_TRUE(torch::equal(was::apply_transform(w, right), plane({0, 1, 2, 0, 4, 5, 0, 7, 8}, 3, 3)));
  TransformParams left;
  left.dx = -1;
  EXPECT_TRUE(torch::equal(was::apply_transform(w, left), plane({2, 3, 0, 5, 6, 0, 8, 9, 0}, 3, 3)));
  TransformParams down;
  down.dy = 1;
  EXPECT_TRUE(torch::equal(was::apply_transform(w, down), plane({0, 0, 0, 1, 2, 3, 4, 5, 6}, 3, 3)));
  TransformParams up_left;
  up_left.dy = -1;
  up_left.dx = -1;
  EXPECT_TRUE(torch::equal(was::apply_transform(w, up_left), plane({5, 6, 0, 8, 9, 0, 0, 0, 0}, 3, 3)));
  TransformParams out;
  out.dx = 3;  // everything leaves the plane
  EXPECT_TRUE(torch::equal(was::apply_transform(w, out), torch::zeros_like(w)));
}

TEST(TransformTest, Rotate90IsExactPermutation) {
  for (int64_t k : {3, 5}) {
    const auto w = counting_kernel(k, k);
    TransformParams p;
    p.angle_deg = 90.0;
    // Counter-clockwise as displayed: torch.rot90 with k=1 over (rows, cols).
    EXPECT_TRUE(torch::equal(was::apply_transform(w, p), torch::rot90(w, 1, {2, 3}))) << "k=" << k;
    p.angle_deg = 180.0;
    EXPECT_TRUE(torch::equal(was::apply_transform(w, p), torch::rot90(w, 2, {2, 3}))) << "k=" << k;
    p.angle_deg = -90.0;
    EXPECT_TRUE(torch::equal(was::apply_transform(w, p), torch::rot90(w, -1, {2, 3}))) << "k=" << k;
  }
}

TEST(TransformTest, IdentitiesAreExact) {
  const auto w = torch::randn({4, 3, 5, 5}, torch::kFloat64);
  TransformParams p;
  p.angle_deg = 0.0;
  p.crop = CropWindow{0, 0, 5, 5};
  p.dx = 0;
  p.dy = 0;
  EXPECT_TRUE(torch::equal(was::apply_transform(w, p), w));
  EXPECT_TRUE(p.is_identity(5, 5));
  EXPECT_TRUE(torch::equal(was::transform_matrix(TransformParams{}, 3, 3), torch::eye(9, torch::kFloat64)));
}

TEST(TransformTest, Rotate45BilinearWorkedByHand) {
  // 3x3, a = 45°. Output (row 0, col 1) is centred (x=0, y=-1); it reads
  // xs = cos45*0 - sin45*(-1) = +0.7071, ys = sin45*0 + cos45*(-1) = -0.7071,
  // i.e. column 1.7071, row 0.2929 of W: bilinear between W[0][1], W[0][2],
  // W[1][1], W[1][2] with fc = 0.7071, fr = 0.2929.
  const auto w = counting_kernel(3, 3);
  TransformParams p;
  p.angle_deg = 45.0;
  const auto s = was::apply_transform(w, p);
  const double r = std::sqrt(0.5);
  const double fc = r, fr = 1 - r;
  const double expected = (1 - fr) * (1 - fc) * 2 + (1 - fr) * fc * 3 + fr * (1 - fc) * 5 + fr * fc * 6;
  EXPECT_NEAR(s[0][0][0][1].item<double>(), expected, 1e-12);
  // The centre tap stays where it is.
  EXPECT_NEAR(s[0][0][1][1].item<double>(), 5.0, 1e-12);
  // Corner (row 0, col 0) = centred (-1, -1) reads xs = 0, ys = -sqrt(2):
  // column 1, row 1 - sqrt(2) = -0.414, between row -1 (outside, 0) and
  // row 0 with weight 2 - sqrt(2) on W[0][1] = 2.
  EXPECT_NEAR(s[0][0][0][0].item<double>(), (2 - std::sqrt(2.0)) * 2, 1e-12);
}

TEST(TransformTest, CompositionOrderIsCropTranslateRotate) {
  const auto w = counting_kernel(3, 3);
  TransformParams p;
  p.crop = CropWindow{0, 0, 2, 2};
  p.dx = 1;
  p.angle_deg = 90.0;
  TransformParams c, t, r;
  c.crop = p.crop;
  t.dx = 1;
  r.angle_deg = 90.0;
  const auto step_by_step = was::apply_transform(was::apply_transform(was::apply_transform(w, c), t), r);
  EXPECT_TRUE(torch::equal(was::apply_transform(w, p), step_by_step));
}

// <A w, g> == <w, A^T g> and autograd gives A^T g, for random draws.
void check_adjoint(const Policy& policy, uint64_t seed) {
  was::CounterStream stream(seed, was::StreamDomain::kTrainingDraw, 0, 0);
  const int64_t out = 4, in = 3, k = 5;
  std::vector<TransformParams> params;
  const int64_t count = policy.granularity == was::Granularity::kFilter ? out : 1;
  for (int64_t i = 0; i < count; ++i) params.push_back(was::draw_params(policy, k, k, stream));
  auto w = torch::randn({out, in, k, k}, torch::kFloat64).requires_grad_(true);
  const auto g = torch::randn({out, in, k, k}, torch::kFloat64);
  const auto s = count == 1 ? was::apply_transform(w, params[0]) : was::apply_transform(w, params);
  (s * g).sum().backward();
  // Explicit adjoint: A^T applied to each plane of g.
  torch::Tensor expected;
  if (count == 1) {
    expected = was::apply_dense_plane_transform(g, was::transform_matrix(params[0], k, k).t());
  } else {
    std::vector<torch::Tensor> mats;
    for (const auto& p : params) mats.push_back(was::transform_matrix(p, k, k).t());
    expected = was::apply_dense_plane_transform(g, torch::stack(mats));
  }
  EXPECT_TRUE(torch::allclose(w.grad(), expected, 1e-12, 1e-12)) << policy.to_string();
  const double lhs = (s * g).sum().item<double>();
  const double rhs = (w * expected).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-9 * std::max(1.0, std::abs(lhs))) << policy.to_string();
}

TEST(TransformTest, LinearAndAdjointForEveryTransformAndGranularity) {
  for (const char* text : {"crop=0.2:1", "translate=0.5:0.5", "rotate=-180:180", "CTR", "crop=0.4:0.6,rotate=0:45"})
    for (const char* granularity : {"layer", "filter"})
      for (uint64_t seed = 0; seed < 4; ++seed)
        check_adjoint(Policy::parse(std::string(text) + ",granularity=" + granularity), seed);
}

TEST(TransformTest, LinearInW) {
  TransformParams p;
  p.crop = CropWindow{1, 0, 2, 3};
  p.dx = -1;
  p.angle_deg = 33.0;
  const auto a = torch::randn({2, 2, 3, 3}, torch::kFloat64), b = torch::randn({2, 2, 3, 3}, torch::kFloat64);
  const auto lhs = was::apply_transform(2.5 * a + b, p);
  const auto rhs = 2.5 * was::apply_transform(a, p) + was::apply_transform(b, p);
  EXPECT_TRUE(torch::allclose(lhs, rhs, 1e-12, 1e-12));
}

TEST(DrawTest, CropWindowsFollowTheSpec) {
  // crop(0.4, 0.6) on 3x3: s*3 in [1.2, 1.8] rounds to 1 or 2.
  const Policy policy = Policy::parse("crop=0.4:0.6");
  was::CounterStream stream(7, was::StreamDomain::kTrainingDraw, 0, 0);
  std::set<int64_t> sizes;
  for (int i = 0; i < 500; ++i) {
    const auto p = was::draw_params(policy, 3, 3, stream);
    ASSERT_TRUE(p.crop.has_value());
    EXPECT_EQ(p.crop->h, p.crop->w);
    EXPECT_GE(p.crop->y0, 0);
    EXPECT_LE(p.crop->y0 + p.crop->h, 3);
    EXPECT_LE(p.crop->x0 + p.crop->w, 3);
    sizes.insert(p.crop->h);
  }
  EXPECT_EQ(sizes, (std::set<int64_t>{1, 2}));
}

TEST(DrawTest, TranslateShiftsStayInRange) {
  const Policy policy = Policy::parse("translate=0.3:0.3");  // 0.9 taps -> shifts in {-1, 0, 1}
  was::CounterStream stream(1, was::StreamDomain::kTrainingDraw, 0, 0);
  std::set<int64_t> shifts;
  for (int i = 0; i < 500; ++i) {
    const auto p = was::draw_params(policy, 3, 3, stream);
    shifts.insert(p.dx);
    EXPECT_LE(std::abs(p.dy), 1);
  }
  EXPECT_EQ(shifts, (std::set<int64_t>{-1, 0, 1}));
}

TEST(DrawTest, ProbabilityZeroNeverAppliesAndOneAlwaysDoes) {
  was::CounterStream a(3, was::StreamDomain::kTrainingDraw, 0, 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(was::draw_params(Policy::parse("CTR@p=0"), 3, 3, a).is_identity(3, 3));
  was::CounterStream b(3, was::StreamDomain::kTrainingDraw, 0, 0);
  int applied = 0;
  for (int i = 0; i < 1000; ++i)
    applied += was::draw_params(Policy::parse("rotate=10:20@p=0.25"), 3, 3, b).angle_deg ? 1 : 0;
  EXPECT_NEAR(applied, 250, 60);
}

TEST(DrawTest, SameKeySameDrawDifferentKeysDiffer) {
  const Policy policy = Policy::parse("crop=0.2:1,translate=0.5:0.5,rotate=0:360");
  auto draw = [&](uint64_t seed, uint64_t layer, uint64_t step) {
    was::CounterStream s(seed, was::StreamDomain::kTrainingDraw, layer, step);
    return was::draw_params(policy, 5, 5, s).to_string();
  };
  EXPECT_EQ(draw(1, 2, 3), draw(1, 2, 3));
  EXPECT_NE(draw(1, 2, 3), draw(1, 2, 4));
  EXPECT_NE(draw(1, 2, 3), draw(1, 3, 3));
  EXPECT_NE(draw(1, 2, 3), draw(2, 2, 3));
}

TEST(PolicyTest, PresetsAndRoundTrip) {
  EXPECT_EQ(Policy::parse("CT").to_string(), "crop=0.8:1,translate=0.3:0.3");
  EXPECT_EQ(Policy::parse("-CTR").to_string(), "crop=0.8:1,translate=0.3:0.3,rotate=0:90");
  EXPECT_EQ(Policy::parse("CT@p=0.5").to_string(), "crop=0.8:1@p=0.5,translate=0.3:0.3@p=0.5");
  EXPECT_TRUE(Policy::parse("none").empty());
  for (const char* text : {"crop=0.4:0.6@p=0.25,rotate=-15:15,granularity=filter,exclude=conv1:layer1.0.conv2",
                           "translate=0.1:0.7", "C", "R"}) {
    const Policy p = Policy::parse(text);
    EXPECT_EQ(Policy::parse(p.to_string()), p) << text;
  }
}

TEST(PolicyTest, OutOfRangeValuesAreRefusedWithTheRange) {
  for (const char* bad : {"crop=0:0.5", "crop=0.5:1.2", "crop=0.7:0.6", "translate=-0.1:0.3", "translate=0.3:1.5",
                          "rotate=90:0", "crop=0.8:1@p=2", "blur=1:2", "crop=abc:1", "crop=0.5", "Q"}) {
    try {
      Policy::parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const was::Error& e) {
      EXPECT_NE(std::string(e.what()).find("policy"), std::string::npos) << e.what();
    }
  }
}

}  // namespace

namespace {

// The transforms computed straight from their definitions (WAS-SPEC §3), on
// whole [O, I] slices of the kernel, without any tap matrix: crop zeroes
// outside the window, translate moves content with zero fill, rotate samples
// bilinearly at the inversely rotated centred position (zero outside).
torch::Tensor reference_transform(const torch::Tensor& w, const TransformParams& p) {
  const int64_t kh = w.size(2), kw = w.size(3);
  auto s = w.clone();
  if (p.crop) {
    auto mask = torch::zeros({kh, kw}, w.options());
    mask.slice(0, p.crop->y0, p.crop->y0 + p.crop->h).slice(1, p.crop->x0, p.crop->x0 + p.crop->w).fill_(1.0);
    s = s * mask;
  }
  if (p.dx != 0 || p.dy != 0) {
    auto moved = torch::zeros_like(s);
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t x = 0; x < kw; ++x) {
        const int64_t sy = y - p.dy, sx = x - p.dx;
        if (sy >= 0 && sy < kh && sx >= 0 && sx < kw)
          moved.select(2, y).select(2, x).copy_(s.select(2, sy).select(2, sx));
      }
    s = moved;
  }
  if (p.angle_deg) {
    const double a = *p.angle_deg * M_PI / 180.0, c = std::cos(a), sn = std::sin(a);
    const double cx = (kw - 1) / 2.0, cy = (kh - 1) / 2.0;
    const auto tap = [&](int64_t r, int64_t q) {
      return (r < 0 || r >= kh || q < 0 || q >= kw) ? torch::zeros_like(s.select(2, 0).select(2, 0))
                                                    : s.select(2, r).select(2, q);
    };
    auto rotated = torch::zeros_like(s);
    for (int64_t row = 0; row < kh; ++row)
      for (int64_t col = 0; col < kw; ++col) {
        double src_col = c * (col - cx) - sn * (row - cy) + cx, src_row = sn * (col - cx) + c * (row - cy) + cy;
        if (std::abs(src_col - std::round(src_col)) < 1e-9) src_col = std::round(src_col);
        if (std::abs(src_row - std::round(src_row)) < 1e-9) src_row = std::round(src_row);
        const double c0 = std::floor(src_col), r0 = std::floor(src_row), fc = src_col - c0, fr = src_row - r0;
        const auto r = static_cast<int64_t>(r0), q = static_cast<int64_t>(c0);
        rotated.select(2, row).select(2, col).copy_(tap(r, q) * ((1 - fr) * (1 - fc)) +
                                                    tap(r, q + 1) * ((1 - fr) * fc) + tap(r + 1, q) * (fr * (1 - fc)) +
                                                    tap(r + 1, q + 1) * (fr * fc));
      }
    s = rotated;
  }
  return s;
}

TEST(TransformTest, FastPathEqualsTheReferenceForEveryPolicyAndGranularity) {
  for (const char* text : {"C", "T", "R", "CT", "CTR", "crop=0.2:0.6", "translate=0.5:0.5,rotate=-180:180", "CT@p=0.5",
                           "crop=0.4:0.6,rotate=0:45"})
    for (const char* granularity : {"layer", "filter"})
      for (const int64_t k : {3, 5})
        for (uint64_t seed = 0; seed < 3; ++seed) {
          const Policy policy = Policy::parse(std::string(text) + ",granularity=" + granularity);
          was::CounterStream stream(seed, was::StreamDomain::kTrainingDraw, 0, 0);
          const auto w = torch::randn({4, 3, k, k}, torch::kFloat64);
          const int64_t count = policy.granularity == was::Granularity::kFilter ? 4 : 1;
          std::vector<TransformParams> params;
          for (int64_t i = 0; i < count; ++i) params.push_back(was::draw_params(policy, k, k, stream));
          const auto fast = count == 1 ? was::apply_transform(w, params[0]) : was::apply_transform(w, params);
          torch::Tensor expected;
          if (count == 1) {
            expected = reference_transform(w, params[0]);
          } else {
            std::vector<torch::Tensor> filters;
            for (int64_t o = 0; o < count; ++o) filters.push_back(reference_transform(w.slice(0, o, o + 1), params[o]));
            expected = torch::cat(filters, 0);
          }
          EXPECT_TRUE(torch::allclose(fast, expected, 1e-12, 1e-12))
              << policy.to_string() << " k=" << k << " seed " << seed;
        }
}

// The CPU pass against the matmul, values and gradients, float32: weights large
// enough to be split across threads (filter groups straddling the split
// points), a channels-last weight, and 1x1, 3x3 and 4x4 planes (4x4 fills
// every lane; larger planes take the matmul).
TEST(TransformTest, CpuPassEqualsTheMatmulWithGradients) {
  torch::manual_seed(0);
  for (const int64_t k : {1, 3, 4})
    for (const char* text :
         {"C", "CT", "CTR", "rotate=-180:180", "crop=0.2:0.6,rotate=0:45", "paper:CTR", "paper:rcrop=0.2:0.6"})
      for (const char* granularity : {"layer", "filter"})
        for (const bool channels_last : {false, true}) {
          const Policy policy = Policy::parse(std::string(text) + ",granularity=" + granularity);
          was::CounterStream stream(3, was::StreamDomain::kTrainingDraw, 0, 0);
          const int64_t out = 37, in = 129;  // 4773 planes: several parallel ranges
          std::vector<TransformParams> params;
          const int64_t count = policy.granularity == was::Granularity::kFilter ? out : 1;
          for (int64_t i = 0; i < count; ++i) params.push_back(was::draw_params(policy, k, k, stream));
          torch::Tensor a;
          if (count == 1) {
            a = was::transform_matrix(params[0], k, k);
          } else {
            std::vector<torch::Tensor> mats;
            for (const auto& p : params) mats.push_back(was::transform_matrix(p, k, k));
            a = torch::stack(mats);
          }
          auto w = torch::randn({out, in, k, k});
          if (channels_last) w = w.contiguous(at::MemoryFormat::ChannelsLast);
          const auto w_cpu = w.clone().requires_grad_(true), w_matmul = w.clone().requires_grad_(true);
          const auto g = torch::randn({out, in, k, k});
          const auto s_cpu = was::apply_plane_transform(w_cpu, a);
          const auto s_matmul = was::apply_dense_plane_transform(w_matmul, a);
          (s_cpu * g).sum().backward();
          (s_matmul * g).sum().backward();
          const std::string what =
              policy.to_string() + " k=" + std::to_string(k) + (channels_last ? " channels-last" : "");
          EXPECT_TRUE(torch::allclose(s_cpu, s_matmul, 1e-5, 1e-6)) << what;
          EXPECT_TRUE(torch::allclose(w_cpu.grad(), w_matmul.grad(), 1e-5, 1e-6)) << what;
          EXPECT_GT(s_matmul.abs().sum().item<double>(), 0.0) << what;
        }
}

}  // namespace

namespace {

// The explicit-parameter API refuses what a caller can get wrong, per filter
// as for one parameter set, with was::Error (never an out-of-bounds write).
TEST(TransformApiTest, InvalidParametersAreRefusedPerFilterToo) {
  const auto weight = torch::randn({2, 3, 3, 3});
  TransformParams outside;
  outside.crop = CropWindow{2, 2, 3, 3};  // y0 + h = 5 > 3
  TransformParams not_finite;
  not_finite.angle_deg = std::nan("");
  TransformParams fine;
  for (const auto& bad : {outside, not_finite}) {
    EXPECT_THROW(was::apply_transform(weight, bad), was::Error);
    EXPECT_THROW(was::apply_transform(weight, std::vector<TransformParams>{fine, bad}), was::Error);
    EXPECT_THROW(was::transform_matrix(bad, 3, 3), was::Error);
  }
  EXPECT_THROW(was::rotate_matrix(3, 3, INFINITY, false), was::Error);
  EXPECT_THROW(was::apply_transform(weight, std::vector<TransformParams>{fine}), was::Error);  // 1 set, 2 filters
  EXPECT_THROW(was::apply_transform(torch::randn({3, 3}), fine), was::Error);
  EXPECT_THROW(was::apply_plane_transform(weight, torch::eye(4)), was::Error);
  EXPECT_THROW(was::apply_plane_transform(weight, torch::Tensor()), was::Error);
  EXPECT_TRUE(torch::equal(was::apply_transform(weight, std::vector<TransformParams>{fine, fine}), weight));
}

}  // namespace
