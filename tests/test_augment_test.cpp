// Test-time augmentations (WAS-SPEC §6) on hand-worked images, the drop-rate
// formula, and the DOM ensemble.
#include <gtest/gtest.h>

#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/data/loader.h"
#include "was/data/test_augment.h"
#include "was/eval/evaluate.h"
#include "was/network.h"

namespace {

using was::data::TestAugmentation;
using was::data::TestAugmentParams;

torch::Tensor counting_image(int64_t h, int64_t w) {  // values 1..h*w, row-major
  return torch::arange(1, h * w + 1).view({1, 1, h, w}).to(torch::kUInt8);
}

TEST(TestAugment, RotateByNinetyIsAnExactPermutation) {
  const auto image = counting_image(5, 5);
  TestAugmentParams p;
  p.degrees = 90.0;
  const auto out = was::data::apply_test_augmentation(image, TestAugmentation::parse("rotate=90:90"), {p});
  // Positive angles turn content counter-clockwise, as torch.rot90 with k = 1.
  EXPECT_TRUE(torch::equal(out, torch::rot90(image, 1, {2, 3})));
  EXPECT_TRUE(torch::equal(std::get<0>(out.flatten().sort()), std::get<0>(image.flatten().sort())));
  // 180 degrees on an even size is a permutation too.
  const auto even = counting_image(4, 4);
  p.degrees = 180.0;
  EXPECT_TRUE(torch::equal(was::data::apply_test_augmentation(even, TestAugmentation::parse("rotate=180:180"), {p}),
                           torch::rot90(even, 2, {2, 3})));
}

TEST(TestAugment, RotateFillsCornersWithZeros) {
  const auto image = torch::full({1, 1, 9, 9}, 200, torch::kUInt8);
  TestAugmentParams p;
  p.degrees = 45.0;
  const auto out = was::data::apply_test_augmentation(image, TestAugmentation::parse("rotate=45:45"), {p});
  EXPECT_EQ(out[0][0][0][0].item<int>(), 0);    // a corner comes from outside the image
  EXPECT_EQ(out[0][0][4][4].item<int>(), 200);  // the centre stays
}

TEST(TestAugment, TranslateMovesContentAndZeroFills) {
  const auto image = counting_image(4, 5);
  TestAugmentParams p;
  p.dx = 2;   // right
  p.dy = -1;  // up
  const auto out = was::data::apply_test_augmentation(image, TestAugmentation::parse("translate=0.5:0.5"), {p});
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 5; ++x) {
      const int64_t sy = y - p.dy, sx = x - p.dx;
      const int expected = (sy >= 0 && sy < 4 && sx >= 0 && sx < 5) ? image[0][0][sy][sx].item<int>() : 0;
      EXPECT_EQ(out[0][0][y][x].item<int>(), expected) << "at " << y << "," << x;
    }
}

TEST(TestAugment, CropOfAreaOneIsTheIdentity) {
  was::data::Dataset data;
  data.images = torch::randint(0, 256, {6, 3, 8, 8}).to(torch::kUInt8);
  data.labels = torch::zeros({6}, torch::kLong);
  data.num_classes = 1;
  const auto out = was::data::augment_dataset(data, TestAugmentation::parse("crop=1:1"), 7);
  EXPECT_TRUE(torch::equal(out.images, data.images));
}

TEST(TestAugment, CropResizesItsWindowBack) {
  const auto image = torch::randint(0, 256, {1, 1, 8, 8}).to(torch::kUInt8);
  const auto aug = TestAugmentation::parse("crop=0.25:0.25");
  const auto p = was::data::draw_test_augmentation(aug, 3, 0, 8, 8);
  EXPECT_EQ(p.crop_h, 4);  // side sqrt(0.25) * 8
  EXPECT_EQ(p.crop_w, 4);
  ASSERT_LE(p.y0 + p.crop_h, 8);
  ASSERT_LE(p.x0 + p.crop_w, 8);
  const auto window = image.slice(2, p.y0, p.y0 + 4).slice(3, p.x0, p.x0 + 4).to(torch::kFloat);
  namespace F = torch::nn::functional;
  const auto expected =
      F::interpolate(
          window,
          F::InterpolateFuncOptions().size(std::vector<int64_t>{8, 8}).mode(torch::kBilinear).align_corners(false))
          .round()
          .to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(was::data::apply_test_augmentation(image, aug, {p}), expected));
}

TEST(TestAugment, DrawsDependOnTheSeedAndImageIndexOnly) {
  was::data::Dataset data;
  data.images = torch::randint(0, 256, {10, 1, 12, 12}).to(torch::kUInt8);
  data.labels = torch::zeros({10}, torch::kLong);
  data.num_classes = 1;
  for (const char* spec : {"rotate=0:180", "translate=0.3:0.3", "crop=0.3:0.9"}) {
    const auto aug = TestAugmentation::parse(spec);
    const auto all = was::data::augment_dataset(data, aug, 5);
    const auto head = was::data::augment_dataset(data.head(3), aug, 5);
    EXPECT_TRUE(torch::equal(all.images.slice(0, 0, 3), head.images)) << spec;
    EXPECT_FALSE(torch::equal(all.images, was::data::augment_dataset(data, aug, 6).images)) << spec;
    EXPECT_FALSE(torch::equal(all.images, data.images)) << spec;
  }
}

TEST(TestAugment, ParsesAndRejects) {
  EXPECT_EQ(TestAugmentation::parse("rotate=0:45").to_string(), "rotate=0:45");
  EXPECT_EQ(TestAugmentation::parse("translate", "0.1:0.2").to_string(), "translate=0.1:0.2");
  EXPECT_DOUBLE_EQ(TestAugmentation::parse("crop=0.4:0.6").strength(), 0.6);
  for (const char* bad :
       {"rotate=45:0", "crop=0:1", "crop=0.5:1.5", "translate=1.5:0", "spin=0:1", "rotate=45", "rotate=a:b", "rotate"})
    EXPECT_THROW(TestAugmentation::parse(bad), was::Error) << bad;
  EXPECT_EQ(was::data::paper_sweep(TestAugmentation::Kind::kRotate).size(), 5u);
}

TEST(DropRate, IsRelativeToTheCleanTop1) {
  const auto d = was::drop_rate(80.0, 60.0);
  EXPECT_DOUBLE_EQ(d.relative, 25.0);
  EXPECT_DOUBLE_EQ(d.absolute, 20.0);
  EXPECT_DOUBLE_EQ(was::drop_rate(50.0, 55.0).relative, -10.0);  // augmentation may help
  EXPECT_DOUBLE_EQ(was::drop_rate(0.0, 0.0).relative, 0.0);
}

TEST(Ensemble, OneDrawEqualsDomAndMoreDrawsDiffer) {
  torch::manual_seed(0);
  was::data::SyntheticOptions options;
  options.image_size = 8;
  const auto split = was::data::make_synthetic(options);
  was::Network net(was::models::ModelConfig{"small_cnn", split.train.num_classes, 1, 8},
                   was::Policy::parse("crop=0.4:0.6"), 0);
  was::data::BatchLoader test(split.test, split.normalization, 64, false, 0);
  for (int64_t seed : {0, 3}) {
    const auto single = was::evaluate(net, test, was::Mode::dom(seed));
    const auto ensemble = was::evaluate_ensemble(net, test, {was::Mode::dom(seed)});
    EXPECT_EQ(ensemble.correct, single.correct);
    EXPECT_NEAR(ensemble.loss, single.loss, 1e-4);
  }
  // Averaging two different draws is not either draw's loss.
  const auto pair = was::evaluate_ensemble(net, test, {was::Mode::dom(0), was::Mode::dom(3)});
  EXPECT_NE(pair.loss, was::evaluate(net, test, was::Mode::dom(0)).loss);
  EXPECT_THROW(was::evaluate_ensemble(net, test, {}), was::Error);
}

}  // namespace
