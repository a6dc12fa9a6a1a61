// Tests of image decoding, resizing and image folders (torchvision's layout).
#include "was/data/image_folder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <unistd.h>
#include "expect_error.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "was/core/error.h"
#include "was/data/datasets.h"
#include "was/data/image.h"

namespace {

using was::testing::error_of;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using was::data::ImageFolderOptions;

using was::testing::TempDir;

/// A deterministic uint8 [c, h, w] image, different for each `seed`.
torch::Tensor pattern(int64_t c, int64_t h, int64_t w, int64_t seed) {
  return ((torch::arange(c * h * w, torch::kLong) * 29 + seed * 71) % 256).to(torch::kByte).view({c, h, w});
}

/// A smooth image (JPEG keeps it well).
torch::Tensor smooth(int64_t h, int64_t w, int64_t seed) {
  const auto y = torch::arange(h, torch::kFloat).view({1, h, 1});
  const auto x = torch::arange(w, torch::kFloat).view({1, 1, w});
  const auto c = torch::arange(3, torch::kFloat).view({3, 1, 1});
  return (128 + 60 * torch::sin(0.2 * x + 0.15 * y + c + static_cast<double>(seed))).round().to(torch::kByte);
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// --- single images -----------------------------------------------------------------

TEST(ImageFolderTest, PngRoundTripIsExactForRgbGreyAndRgba) {
  TempDir dir;
  const auto rgb = pattern(3, 5, 7, 1);
  was::data::write_png(dir.file("rgb.png"), rgb);
  EXPECT_FALSE(fs::exists(dir.file("rgb.png.tmp")));
  EXPECT_TRUE(torch::equal(was::data::read_image(dir.file("rgb.png")), rgb));
  // Grey becomes three equal channels.
  const auto grey = pattern(1, 6, 4, 2);
  was::data::write_png(dir.file("grey.png"), grey);
  EXPECT_TRUE(torch::equal(was::data::read_image(dir.file("grey.png")), grey.expand({3, 6, 4})));
  // Alpha is dropped, not composited: colour survives even where alpha is 0.
  auto rgba = pattern(4, 3, 3, 3);
  rgba[3].zero_();
  rgba[3][1][1] = 255;
  was::data::write_png(dir.file("rgba.png"), rgba);
  EXPECT_TRUE(torch::equal(was::data::read_image(dir.file("rgba.png")), rgba.slice(0, 0, 3)));
}

TEST(ImageFolderTest, JpegRoundTripIsCloseAndGreyBecomesRgb) {
  TempDir dir;
  const auto image = smooth(24, 32, 0);
  was::data::write_jpeg(dir.file("a.jpg"), image, 95);
  const auto back = was::data::read_image(dir.file("a.jpg"));
  ASSERT_EQ(back.sizes(), image.sizes());
  EXPECT_LT((back.to(torch::kFloat) - image.to(torch::kFloat)).abs().mean().item<double>(), 3.0);
  was::data::write_jpeg(dir.file("grey.jpg"), image.slice(0, 0, 1), 95);
  const auto grey = was::data::read_image(dir.file("grey.jpg"));
  ASSERT_EQ(grey.sizes(), (std::vector<int64_t>{3, 24, 32}));
  EXPECT_TRUE(torch::equal(grey[0], grey[1]));
  EXPECT_TRUE(torch::equal(grey[0], grey[2]));
  EXPECT_THROW(was::data::write_jpeg(dir.file("x.jpg"), image, 0), was::Error);
  EXPECT_THROW(was::data::write_jpeg(dir.file("x.jpg"), pattern(4, 2, 2, 0)), was::Error);
}

// CMYK JPEGs (print workflows; Adobe's inverted inks) are converted, not
// called damaged. Written by Pillow (Debian's python3-pil, which torchvision
// depends on) as users' files are; skipped where it is missing.
TEST(ImageFolderTest, CmykJpegIsConvertedToRgb) {
  TempDir dir;
  const std::string path = dir.file("cmyk.jpg");
  // Four 8x8 patches: white, black, cyan and a mid grey-red, as inks (C, M, Y, K).
  const std::string script =
      "import sys; from PIL import Image; im = Image.new('CMYK', (16, 16)); "
      "[im.paste(c, (x, y, x + 8, y + 8)) for c, (x, y) in zip([(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0), "
      "(0, 128, 128, 64)], [(0, 0), (8, 0), (0, 8), (8, 8)])]; im.save(sys.argv[1], quality=100)";
  if (std::system(("/usr/bin/python3 -c \"" + script + "\" " + path + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "Pillow (python3-pil) is not installed";
  const auto rgb = was::data::read_image(path).to(torch::kInt);
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 16, 16}));
  const auto patch = [&](int64_t x, int64_t y) { return rgb.index({torch::indexing::Slice(), y + 4, x + 4}); };
  // R = 255 (1 - C)(1 - K), and so on; JPEG at quality 100 keeps these within a few levels.
  const std::vector<std::pair<torch::Tensor, std::vector<int>>> expected = {{patch(0, 0), {255, 255, 255}},
                                                                            {patch(8, 0), {0, 0, 0}},
                                                                            {patch(0, 8), {0, 255, 255}},
                                                                            {patch(8, 8), {191, 95, 95}}};
  for (const auto& [got, want] : expected)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(got[c].item<int>(), want[c], 4) << got;
}

TEST(ImageFolderTest, AFolderTooLargeForMemoryIsRefusedBeforeDecoding) {
  TempDir dir;
  fs::create_directories(dir.file("a"));
  was::data::write_png(dir.file("a/x.png"), pattern(3, 4, 4, 0));
  ImageFolderOptions options;
  options.image_size = 16384;  // 3 x 16384^2 bytes an image
  const int64_t memory = int64_t(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  const int64_t images = memory / 2 / (3LL * 16384 * 16384) + 2;  // just over half of it
  for (int64_t i = 1; i < images; ++i) fs::copy_file(dir.file("a/x.png"), dir.file("a/x" + std::to_string(i) + ".png"));
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.path().string(), options); }),
              HasSubstr("in memory, more than half of this machine's"));
}

TEST(ImageFolderTest, DecodesByContentNotName) {
  TempDir dir;
  const auto image = pattern(3, 4, 4, 5);
  was::data::write_png(dir.file("really_a_png.jpg"), image);
  EXPECT_TRUE(torch::equal(was::data::read_image(dir.file("really_a_png.jpg")), image));
}

TEST(ImageFolderTest, BadImageFilesNameTheFile) {
  TempDir dir;
  write_text(dir.file("text.jpg"), "this is not an image");
  EXPECT_THAT(error_of([&] { was::data::read_image(dir.file("text.jpg")); }),
              HasSubstr("'" + dir.file("text.jpg") + "' is not a JPEG or PNG image"));
  write_text(dir.file("empty.png"), "");
  EXPECT_THAT(error_of([&] { was::data::read_image(dir.file("empty.png")); }), HasSubstr("(the file is empty)"));
  EXPECT_THAT(error_of([&] { was::data::read_image(dir.file("missing.png")); }),
              HasSubstr(dir.file("missing.png") + "' does not exist"));
  // Truncated files: cut in the middle of the compressed data.
  was::data::write_jpeg(dir.file("cut.jpg"), smooth(64, 64, 1));
  fs::resize_file(dir.file("cut.jpg"), fs::file_size(dir.file("cut.jpg")) / 2);
  auto msg = error_of([&] { was::data::read_image(dir.file("cut.jpg")); });
  EXPECT_THAT(msg, HasSubstr("cannot decode JPEG image '" + dir.file("cut.jpg") + "'"));
  EXPECT_THAT(msg, HasSubstr("truncated"));
  was::data::write_png(dir.file("cut.png"), pattern(3, 64, 64, 1));
  fs::resize_file(dir.file("cut.png"), fs::file_size(dir.file("cut.png")) / 2);
  msg = error_of([&] { was::data::read_image(dir.file("cut.png")); });
  EXPECT_THAT(msg, HasSubstr("cannot decode PNG image '" + dir.file("cut.png") + "'"));
  // Only the signature: the header is missing.
  const unsigned char png_magic[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  std::ofstream(dir.file("sig.png"), std::ios::binary).write(reinterpret_cast<const char*>(png_magic), 8);
  EXPECT_THAT(error_of([&] { was::data::read_image(dir.file("sig.png")); }), HasSubstr(dir.file("sig.png")));
}

// --- resizing -------------------------------------------------------------------------

TEST(ImageFolderTest, ResizeSameSizeIsIdentity) {
  const auto image = pattern(3, 5, 6, 0);
  const auto same = was::data::resize_image(image, 5, 6);
  EXPECT_TRUE(torch::equal(same, image));
  EXPECT_NE(same.data_ptr(), image.data_ptr());
}

TEST(ImageFolderTest, ResizeMatchesBilinearReference) {
  // Upscaling 2x: half-pixel centres, so output x samples input (x + 0.5) / 2 - 0.5,
  // clamped at the borders: a ramp 0, 40, 80, 120 gives 0, 10, 30, 50, 70, 90, 110, 120.
  const auto ramp =
      (torch::arange(4, torch::kLong) * 40).to(torch::kByte).view({1, 1, 4}).expand({3, 2, 4}).contiguous();
  const auto up = was::data::resize_image(ramp, 2, 8);
  EXPECT_TRUE(torch::equal(up[1][0], torch::tensor({0, 10, 30, 50, 70, 90, 110, 120}, torch::kByte)));
  // Shrinking 2x averages neighbours with symmetric weights: an interior output
  // pixel of a linear ramp is the ramp at its centre.
  const auto wide =
      (torch::arange(8, torch::kLong) * 20).to(torch::kByte).view({1, 1, 8}).expand({3, 4, 8}).contiguous();
  const auto down = was::data::resize_image(wide, 2, 4);
  ASSERT_EQ(down.sizes(), (std::vector<int64_t>{3, 2, 4}));
  EXPECT_EQ(down[0][0][1].item<int64_t>(), 50);  // centre x = 2.5
  EXPECT_EQ(down[2][1][2].item<int64_t>(), 90);  // centre x = 4.5
  // A constant image stays constant, any size.
  const auto flat = torch::full({3, 7, 5}, 77, torch::kByte);
  EXPECT_TRUE(torch::equal(was::data::resize_image(flat, 3, 11), torch::full({3, 3, 11}, 77, torch::kByte)));
  EXPECT_THROW(was::data::resize_image(flat, 0, 4), was::Error);
}

// --- folders --------------------------------------------------------------------------

/// root/<class>/<name>.png with pattern images; returns them in folder order.
std::vector<torch::Tensor> write_pngs(const TempDir& dir, const std::string& root,
                                      const std::vector<std::pair<std::string, int>>& classes, int64_t size = 6) {
  std::vector<torch::Tensor> images;
  int64_t seed = 0;
  for (const auto& [name, count] : classes) {
    for (int i = 0; i < count; ++i) {
      images.push_back(pattern(3, size, size, seed++));
      was::data::write_png(dir.file(root + "/" + name + "/img" + std::to_string(i) + ".png"), images.back());
    }
  }
  return images;
}

TEST(ImageFolderTest, ClassesSortedSamplesInClassThenPathOrder) {
  TempDir dir;
  // Written out of order; classes and files must come back sorted.
  const auto zebra = pattern(3, 6, 6, 10), ant0 = pattern(3, 6, 6, 11), ant1 = pattern(3, 6, 6, 12);
  was::data::write_png(dir.file("zebra/z.png"), zebra);
  was::data::write_png(dir.file("ant/b.PNG"), ant1);
  was::data::write_png(dir.file("ant/a.png"), ant0);
  const auto smooth_image = smooth(6, 6, 0);
  was::data::write_jpeg(dir.file("bee/nested/c.JPEG"), smooth_image, 100);  // subfolders count, any case
  EXPECT_EQ(was::data::image_folder_classes(dir.str()), (std::vector<std::string>{"ant", "bee", "zebra"}));
  const auto data = was::data::load_image_folder(dir.str());
  EXPECT_EQ(data.num_classes, 3);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"ant", "bee", "zebra"}));
  EXPECT_TRUE(torch::equal(data.labels, torch::tensor({0, 0, 1, 2}, torch::kLong)));
  ASSERT_EQ(data.images.sizes(), (std::vector<int64_t>{4, 3, 6, 6}));
  EXPECT_TRUE(torch::equal(data.images[0], ant0));
  EXPECT_TRUE(torch::equal(data.images[1], ant1));
  EXPECT_TRUE(torch::equal(data.images[3], zebra));
  EXPECT_TRUE(torch::equal(data.images[2], was::data::read_image(dir.file("bee/nested/c.JPEG"))));
}

TEST(ImageFolderTest, HiddenFilesAndFoldersAreIgnored) {
  TempDir dir;
  write_pngs(dir, ".", {{"a", 2}, {"b", 1}});
  write_text(dir.file("a/.DS_Store"), "junk");
  write_text(dir.file(".ipynb_checkpoints/x.txt"), "junk");
  write_text(dir.file("b/.cache/notes.txt"), "junk");
  write_text(dir.file("README.txt"), "files beside the class folders are not samples");
  const auto data = was::data::load_image_folder(dir.str());
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(data.size(), 3);
}

TEST(ImageFolderTest, ParallelDecodingGivesTheSameBytes) {
  TempDir dir;
  for (int i = 0; i < 40; ++i) {
    was::data::write_jpeg(dir.file("c" + std::to_string(i % 3) + "/" + std::to_string(i) + ".jpg"), smooth(9, 9, i));
  }
  ImageFolderOptions one, four;
  one.threads = 1;
  four.threads = 4;
  const auto a = was::data::load_image_folder(dir.str(), one);
  const auto b = was::data::load_image_folder(dir.str(), four);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
}

TEST(ImageFolderTest, MixedSizesNeedAnImageSize) {
  TempDir dir;
  was::data::write_png(dir.file("a/1.png"), pattern(3, 8, 8, 0));
  was::data::write_png(dir.file("a/2.png"), pattern(3, 8, 8, 1));
  was::data::write_png(dir.file("b/1.png"), pattern(3, 10, 6, 2));
  const std::string msg = error_of([&] { was::data::load_image_folder(dir.str()); });
  EXPECT_THAT(msg, HasSubstr("images of mixed sizes"));
  EXPECT_THAT(msg, HasSubstr("'" + dir.file("b/1.png") + "' is 6x10"));
  EXPECT_THAT(msg, HasSubstr("the first image '" + dir.file("a/1.png") + "' is 8x8"));
  EXPECT_THAT(msg, HasSubstr("--image-size"));
  ImageFolderOptions o;
  o.image_size = 8;
  const auto data = was::data::load_image_folder(dir.str(), o);
  ASSERT_EQ(data.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  EXPECT_TRUE(torch::equal(data.images[0], pattern(3, 8, 8, 0)));  // right size already: untouched
  EXPECT_TRUE(torch::equal(data.images[2], was::data::resize_image(pattern(3, 10, 6, 2), 8, 8)));
}

TEST(ImageFolderTest, EmptyClassFolderNamesIt) {
  TempDir dir;
  write_pngs(dir, ".", {{"a", 1}});
  fs::create_directories(dir.path() / "b");
  write_text(dir.file("b/.hidden"), "");
  const std::string msg = error_of([&] { was::data::load_image_folder(dir.str()); });
  EXPECT_THAT(msg, HasSubstr("class folder '" + (dir.path() / "b").string() + "' holds no images"));
}

TEST(ImageFolderTest, NonImageAndUnreadableFilesNameTheFile) {
  TempDir dir;
  write_pngs(dir, ".", {{"a", 3}, {"b", 3}});
  write_text(dir.file("b/notes.txt"), "hello");
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.str()); }),
              HasSubstr("'" + dir.file("b/notes.txt") + "' in image folder is not a .jpg, .jpeg or .png"));
  fs::remove(dir.file("b/notes.txt"));
  write_text(dir.file("b/fake.jpg"), "hello");
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.str()); }),
              HasSubstr("'" + dir.file("b/fake.jpg") + "' is not a JPEG or PNG image"));
  fs::remove(dir.file("b/fake.jpg"));
  fs::resize_file(dir.file("a/img1.png"), 40);
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.str()); }),
              HasSubstr("cannot decode PNG image '" + dir.file("a/img1.png") + "'"));
  fs::remove(dir.file("a/img1.png"));
  if (::geteuid() != 0) {  // root reads anything
    fs::permissions(dir.file("a/img2.png"), fs::perms::none);
    EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.str()); }),
                HasSubstr("cannot open image file '" + dir.file("a/img2.png") + "'"));
  }
}

TEST(ImageFolderTest, MissingOrEmptyRoot) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.file("nope")); }),
              HasSubstr("image folder '" + dir.file("nope") + "' does not exist"));
  EXPECT_THAT(error_of([&] { was::data::load_image_folder(dir.str()); }), HasSubstr("holds no class folders"));
}

TEST(ImageFolderTest, TrainTestSplitSharesClassesAndNormalisation) {
  TempDir dir;
  const auto train = write_pngs(dir, "train", {{"cat", 2}, {"dog", 3}, {"emu", 1}});
  write_pngs(dir, "test", {{"dog", 2}, {"emu", 1}});  // no test cats: labels still by name
  const auto split = was::data::load_dataset("imagefolder", dir.str());
  EXPECT_EQ(split.name, "imagefolder");
  EXPECT_EQ(split.train.size(), 6);
  EXPECT_EQ(split.test.size(), 3);
  EXPECT_EQ(split.test.num_classes, 3);
  EXPECT_EQ(split.test.class_names, split.train.class_names);
  EXPECT_TRUE(torch::equal(split.test.labels, torch::tensor({1, 1, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(split.train.images[5], train[5]));
  const auto norm = was::data::compute_normalization(split.train);
  EXPECT_EQ(split.normalization.mean, norm.mean);
  EXPECT_TRUE(was::data::augments_by_default("imagefolder"));
}

TEST(ImageFolderTest, SplitErrors) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { was::data::load_dataset("imagefolder", ""); }), HasSubstr("--data-dir"));
  write_pngs(dir, "train", {{"cat", 1}, {"dog", 1}});
  EXPECT_THAT(error_of([&] { was::data::load_dataset("imagefolder", dir.str()); }),
              HasSubstr("needs a train/ and a test/ subfolder"));
  write_pngs(dir, "test", {{"cat", 1}, {"owl", 1}});
  EXPECT_THAT(
      error_of([&] { was::data::load_dataset("imagefolder", dir.str()); }),
      HasSubstr("class folder '" + (dir.path() / "test" / "owl").string() + "' is not one of the classes cat, dog"));
  fs::remove_all(dir.path() / "test");
  write_pngs(dir, "test", {{"cat", 1}}, 9);
  EXPECT_THAT(error_of([&] { was::data::load_dataset("imagefolder", dir.str()); }),
              HasSubstr("is 9x9, but the train images are 6x6"));
  // With a size, both splits are resized to it.
  was::data::DatasetOptions o;
  o.image_size = 7;
  const auto split = was::data::load_dataset("imagefolder", dir.str(), o);
  EXPECT_EQ(split.train.images.sizes(), (std::vector<int64_t>{2, 3, 7, 7}));
  EXPECT_EQ(split.test.images.sizes(), (std::vector<int64_t>{1, 3, 7, 7}));
}

}  // namespace
