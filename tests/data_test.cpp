// Tests of the data module: IDX files, datasets, normalisation, the loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <unistd.h>
#include "expect_error.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "was/core/error.h"
#include "was/data/dataset.h"
#include "was/data/datasets.h"
#include "was/data/idx.h"
#include "was/data/loader.h"

namespace {

using was::testing::error_of;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using was::data::BatchLoader;
using was::data::Dataset;

using was::testing::TempDir;

/// Deterministic uint8 images [n, 1, h, w] that use the whole byte range.
torch::Tensor test_images(int64_t n, int64_t h, int64_t w) {
  return (torch::arange(n * h * w, torch::kLong) * 37 % 256).to(torch::kByte).view({n, 1, h, w});
}

torch::Tensor test_labels(int64_t n, int64_t classes) { return torch::arange(n, torch::kLong) * 7 % classes; }

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Writes the four Fashion-MNIST files of a tiny set into `dir`.
void write_fake_fashion_mnist(const TempDir& dir, bool gzip, int64_t train_n = 12, int64_t test_n = 5) {
  const std::string ext = gzip ? ".gz" : "";
  was::data::write_idx_images(dir.file("train-images-idx3-ubyte" + ext), test_images(train_n, 28, 28), gzip);
  was::data::write_idx_labels(dir.file("train-labels-idx1-ubyte" + ext), test_labels(train_n, 10), gzip);
  was::data::write_idx_images(dir.file("t10k-images-idx3-ubyte" + ext), test_images(test_n, 28, 28), gzip);
  was::data::write_idx_labels(dir.file("t10k-labels-idx1-ubyte" + ext), test_labels(test_n, 10), gzip);
}

Dataset small_dataset(int64_t n, int64_t c = 2, int64_t classes = 3) {
  Dataset d;
  d.images = (torch::arange(n * c * 4 * 5, torch::kLong) * 13 % 256).to(torch::kByte).view({n, c, 4, 5});
  d.labels = test_labels(n, classes);
  d.num_classes = classes;
  return d;
}

// --- IDX -------------------------------------------------------------------------

TEST(IdxTest, RoundTripGzipAndRaw) {
  TempDir dir;
  const torch::Tensor images = test_images(6, 7, 9);
  const torch::Tensor labels = test_labels(6, 10);
  for (bool gzip : {true, false}) {
    const std::string ip = dir.file(gzip ? "i.gz" : "i"), lp = dir.file(gzip ? "l.gz" : "l");
    was::data::write_idx_images(ip, images, gzip);
    was::data::write_idx_labels(lp, labels, gzip);
    EXPECT_FALSE(fs::exists(ip + ".tmp"));
    const auto bytes = read_bytes(ip);
    ASSERT_GE(bytes.size(), 4u);
    if (gzip) {
      EXPECT_EQ(bytes[0], 0x1f);
      EXPECT_EQ(bytes[1], 0x8b);
    } else {
      EXPECT_EQ(bytes.size(), 16u + 6 * 7 * 9);
      EXPECT_EQ(std::vector<unsigned char>(bytes.begin(), bytes.begin() + 8),
                (std::vector<unsigned char>{0, 0, 8, 3, 0, 0, 0, 6}));
      EXPECT_EQ(read_bytes(lp).size(), 8u + 6);
    }
    const torch::Tensor ri = was::data::read_idx_images(ip);
    const torch::Tensor rl = was::data::read_idx_labels(lp);
    EXPECT_EQ(ri.scalar_type(), torch::kByte);
    EXPECT_EQ(ri.sizes(), (std::vector<int64_t>{6, 1, 7, 9}));
    EXPECT_TRUE(torch::equal(ri, images));
    EXPECT_EQ(rl.scalar_type(), torch::kLong);
    EXPECT_TRUE(torch::equal(rl, labels));
  }
}

TEST(IdxTest, WritesThreeDimensionalImages) {
  TempDir dir;
  const torch::Tensor images = test_images(3, 4, 5);
  was::data::write_idx_images(dir.file("i"), images.squeeze(1), false);
  EXPECT_TRUE(torch::equal(was::data::read_idx_images(dir.file("i")), images));
}

TEST(IdxTest, WrongMagicNamesFileAndBothNumbers) {
  TempDir dir;
  const std::string path = dir.file("labels.gz");
  was::data::write_idx_labels(path, test_labels(4, 10), true);
  const std::string msg = error_of([&] { was::data::read_idx_images(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("2049"));
  EXPECT_THAT(msg, HasSubstr("2051"));
  // And the other way round, on a raw file.
  const std::string images = dir.file("images");
  was::data::write_idx_images(images, test_images(2, 3, 3), false);
  const std::string other = error_of([&] { was::data::read_idx_labels(images); });
  EXPECT_THAT(other, HasSubstr(images));
  EXPECT_THAT(other, HasSubstr("found 2051"));
}

TEST(IdxTest, TruncatedRawFileSaysExpectedAndActualBytes) {
  TempDir dir;
  const std::string path = dir.file("images");
  was::data::write_idx_images(path, test_images(4, 5, 5), false);
  fs::resize_file(path, 16 + 30);
  const std::string msg = error_of([&] { was::data::read_idx_images(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("truncated"));
  EXPECT_THAT(msg, HasSubstr(std::to_string(16 + 4 * 25)));
  EXPECT_THAT(msg, HasSubstr(std::to_string(16 + 30)));
}

TEST(IdxTest, TruncatedHeader) {
  TempDir dir;
  const std::string path = dir.file("labels");
  write_bytes(path, {0, 0, 8, 1, 0});
  const std::string msg = error_of([&] { was::data::read_idx_labels(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

TEST(IdxTest, TruncatedGzipStream) {
  TempDir dir;
  const std::string path = dir.file("images.gz");
  was::data::write_idx_images(path, test_images(50, 28, 28), true);
  fs::resize_file(path, fs::file_size(path) / 2);
  const std::string msg = error_of([&] { was::data::read_idx_images(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

TEST(IdxTest, CountTooLargeForPayloadIsTruncation) {
  TempDir dir;
  // A header that claims one label more than the file holds.
  std::vector<unsigned char> raw = {0, 0, 8, 1, 0, 0, 0, 11};
  for (int i = 0; i < 10; ++i) raw.push_back(static_cast<unsigned char>(i));
  write_bytes(dir.file("labels"), raw);
  const std::string msg = error_of([&] { was::data::read_idx_labels(dir.file("labels")); });
  EXPECT_THAT(msg, HasSubstr("expected 19 bytes"));
  EXPECT_THAT(msg, HasSubstr("got 18"));
}

TEST(IdxTest, TrailingBytesAreAnError) {
  TempDir dir;
  const std::string path = dir.file("images");
  was::data::write_idx_images(path, test_images(2, 3, 3), false);
  auto bytes = read_bytes(path);
  bytes.insert(bytes.end(), {1, 2, 3});
  write_bytes(path, bytes);
  const std::string msg = error_of([&] { was::data::read_idx_images(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("3 trailing bytes"));
}

TEST(IdxTest, ImplausibleDimensionsAreAnError) {
  TempDir dir;
  const std::string path = dir.file("images");
  write_bytes(path, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 28});  // zero rows
  EXPECT_THAT(error_of([&] { was::data::read_idx_images(path); }), HasSubstr(path));
  write_bytes(path, {0, 0, 8, 3, 0, 0, 0, 1, 0x7f, 0, 0, 0, 0, 0, 0, 28});  // 2^30 rows
  const std::string msg = error_of([&] { was::data::read_idx_images(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("row count"));
}

TEST(IdxTest, MissingFileNamesPathAndHintsInstall) {
  TempDir dir;
  const std::string path = dir.file("nope-idx3-ubyte.gz");
  try {
    was::data::read_idx_images(path);
    FAIL() << "no error";
  } catch (const was::Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr(path));
    EXPECT_THAT(e.hint(), HasSubstr("apt-get install dataset-fashion-mnist"));
    EXPECT_THAT(e.hint(), HasSubstr("--data-dir"));
  }
}

TEST(IdxTest, WriteRejectsBadInput) {
  TempDir dir;
  EXPECT_THROW(was::data::write_idx_images(dir.file("x"), torch::zeros({2, 3, 4, 4}, torch::kByte), false), was::Error);
  EXPECT_THROW(was::data::write_idx_images(dir.file("x"), torch::zeros({2, 4, 4}), false), was::Error);
  EXPECT_THROW(was::data::write_idx_labels(dir.file("x"), torch::tensor({1, 256}), false), was::Error);
  EXPECT_FALSE(fs::exists(dir.file("x")));
}

// --- Dataset, normalisation, Fashion-MNIST from files ------------------------------

TEST(DataTest, CheckAcceptsConsistentAndRejectsBadLabels) {
  Dataset d = small_dataset(6);
  EXPECT_NO_THROW(d.check("small"));
  EXPECT_EQ(d.size(), 6);
  EXPECT_EQ(d.channels(), 2);
  EXPECT_EQ(d.height(), 4);
  EXPECT_EQ(d.width(), 5);
  d.labels[2] = 3;
  EXPECT_THAT(error_of([&] { d.check("small"); }), HasSubstr("small"));
  d.labels[2] = -1;
  EXPECT_THROW(d.check("small"), was::Error);
  Dataset e = small_dataset(6);
  e.labels = e.labels.slice(0, 0, 5);
  EXPECT_THROW(e.check("short labels"), was::Error);
  Dataset f = small_dataset(6);
  f.images = f.images.to(torch::kFloat);
  EXPECT_THROW(f.check("float images"), was::Error);
}

TEST(DataTest, HeadCopiesFirstSamples) {
  const Dataset d = small_dataset(6);
  const Dataset h = d.head(4);
  EXPECT_EQ(h.size(), 4);
  EXPECT_TRUE(torch::equal(h.images, d.images.slice(0, 0, 4)));
  EXPECT_TRUE(torch::equal(h.labels, d.labels.slice(0, 0, 4)));
  EXPECT_NE(h.images.data_ptr(), d.images.data_ptr());
  EXPECT_EQ(d.head(100).size(), 6);
  EXPECT_THROW(d.head(-1), was::Error);
}

TEST(DataTest, ComputeNormalizationMatchesReference) {
  const Dataset d = small_dataset(9, 3);
  const auto norm = was::data::compute_normalization(d);
  ASSERT_EQ(norm.mean.size(), 3u);
  const torch::Tensor x = d.images.to(torch::kDouble) / 255.0;
  for (int64_t c = 0; c < 3; ++c) {
    const torch::Tensor plane = x.select(1, c);
    EXPECT_NEAR(norm.mean[c], plane.mean().item<double>(), 1e-12);
    EXPECT_NEAR(norm.std[c], plane.std(/*unbiased=*/false).item<double>(), 1e-12);
  }
}

TEST(DataTest, NormalizeMatchesFormula) {
  const Dataset d = small_dataset(3, 2);
  const was::data::Normalization norm{{0.25, 0.5}, {0.5, 0.125}};
  const torch::Tensor y = was::data::normalize(d.images, norm);
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_EQ(y.sizes(), d.images.sizes());
  const torch::Tensor x = d.images.to(torch::kDouble) / 255.0;
  const torch::Tensor mean = torch::tensor({0.25, 0.5}, torch::kDouble).view({1, 2, 1, 1});
  const torch::Tensor sd = torch::tensor({0.5, 0.125}, torch::kDouble).view({1, 2, 1, 1});
  EXPECT_TRUE(torch::allclose(y.to(torch::kDouble), (x - mean) / sd, 1e-5, 1e-5));
  EXPECT_THROW(was::data::normalize(d.images, {{0.1}, {0.2}}), was::Error);
  EXPECT_THROW(was::data::normalize(d.images.to(torch::kFloat), norm), was::Error);
}

TEST(DataTest, LoadsFashionMnistLayoutFromGzipAndRawFiles) {
  for (bool gzip : {true, false}) {
    TempDir dir;
    write_fake_fashion_mnist(dir, gzip);
    const auto split = was::data::load_fashion_mnist(dir.path().string());
    EXPECT_EQ(split.name, "fashion-mnist");
    EXPECT_EQ(split.train.size(), 12);
    EXPECT_EQ(split.test.size(), 5);
    EXPECT_EQ(split.train.images.sizes(), (std::vector<int64_t>{12, 1, 28, 28}));
    EXPECT_EQ(split.train.num_classes, 10);
    ASSERT_EQ(split.train.class_names.size(), 10u);
    EXPECT_EQ(split.train.class_names[0], "T-shirt/top");
    EXPECT_EQ(split.train.class_names[9], "Ankle boot");
    EXPECT_TRUE(torch::equal(split.test.labels, test_labels(5, 10)));
    const auto expected = was::data::compute_normalization(split.train);
    EXPECT_EQ(split.normalization.mean, expected.mean);
    EXPECT_EQ(split.normalization.std, expected.std);
  }
}

TEST(DataTest, ImageLabelCountMismatchNamesBothFiles) {
  TempDir dir;
  write_fake_fashion_mnist(dir, true);
  const std::string labels = dir.file("train-labels-idx1-ubyte.gz");
  was::data::write_idx_labels(labels, test_labels(11, 10), true);
  const std::string msg = error_of([&] { was::data::load_fashion_mnist(dir.path().string()); });
  EXPECT_THAT(msg, HasSubstr(labels));
  EXPECT_THAT(msg, HasSubstr(dir.file("train-images-idx3-ubyte.gz")));
  EXPECT_THAT(msg, HasSubstr("12"));
  EXPECT_THAT(msg, HasSubstr("11"));
}

TEST(DataTest, MissingDirectoryAndMissingFile) {
  TempDir dir;
  const std::string missing = dir.file("no-such-dir");
  EXPECT_THAT(error_of([&] { was::data::load_fashion_mnist(missing); }),
              HasSubstr("dataset directory '" + missing + "' does not exist"));
  write_fake_fashion_mnist(dir, true);
  fs::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_THAT(error_of([&] { was::data::load_fashion_mnist(dir.path().string()); }),
              HasSubstr("t10k-labels-idx1-ubyte"));
}

TEST(DataTest, LabelOutOfRangeNamesFile) {
  TempDir dir;
  write_fake_fashion_mnist(dir, false);
  const std::string labels = dir.file("t10k-labels-idx1-ubyte");
  was::data::write_idx_labels(labels, torch::tensor({0, 1, 2, 3, 10}), false);
  EXPECT_THAT(error_of([&] { was::data::load_fashion_mnist(dir.path().string()); }), HasSubstr(labels));
}

TEST(DataTest, LoadDatasetByName) {
  const auto names = was::data::dataset_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "fashion-mnist"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "synthetic"), names.end());
  was::data::SyntheticOptions o;
  o.train_size = 8;
  o.test_size = 4;
  const auto split = was::data::load_dataset("synthetic", "", o);
  EXPECT_EQ(split.name, "synthetic");
  EXPECT_EQ(split.train.size(), 8);
  try {
    was::data::load_dataset("cifar-7", "", o);
    FAIL() << "no error";
  } catch (const was::Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("cifar-7"));
    EXPECT_THAT(e.hint(), HasSubstr("fashion-mnist"));
    EXPECT_THAT(e.hint(), HasSubstr("synthetic"));
  }
}

TEST(DataFashionMnistTest, LoadsInstalledDataSet) {
  if (!fs::exists(was::data::kFashionMnistDir)) {
    GTEST_SKIP() << "Fashion-MNIST is not installed at " << was::data::kFashionMnistDir
                 << " (apt-get install dataset-fashion-mnist)";
  }
  const auto split = was::data::load_dataset("fashion-mnist", "");
  EXPECT_EQ(split.train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(split.test.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(split.train.num_classes, 10);
  EXPECT_EQ(split.train.labels.min().item<int64_t>(), 0);
  EXPECT_EQ(split.train.labels.max().item<int64_t>(), 9);
  // Fashion-MNIST is balanced: 6000 training images per class.
  EXPECT_TRUE(torch::equal(torch::bincount(split.train.labels), torch::full({10}, 6000, torch::kLong)));
  // The commonly quoted statistics of its training set.
  EXPECT_NEAR(split.normalization.mean[0], 0.2860, 1e-3);
  EXPECT_NEAR(split.normalization.std[0], 0.3530, 1e-3);
}

// --- Synthetic --------------------------------------------------------------------

TEST(SyntheticTest, SameSeedSameBytesOtherSeedOtherBytes) {
  was::data::SyntheticOptions o;
  o.seed = 7;
  const auto a = was::data::make_synthetic(o);
  const auto b = was::data::make_synthetic(o);
  EXPECT_TRUE(torch::equal(a.train.images, b.train.images));
  EXPECT_TRUE(torch::equal(a.train.labels, b.train.labels));
  EXPECT_TRUE(torch::equal(a.test.images, b.test.images));
  EXPECT_EQ(a.normalization.mean, b.normalization.mean);
  o.seed = 8;
  const auto c = was::data::make_synthetic(o);
  EXPECT_FALSE(torch::equal(a.train.images, c.train.images));
  EXPECT_FALSE(torch::equal(a.test.images, c.test.images));
  // Train and test are different draws.
  EXPECT_FALSE(torch::equal(a.train.images.slice(0, 0, 256), a.test.images));
}

TEST(SyntheticTest, IndependentOfThreadCount) {
  const int threads = torch::get_num_threads();
  const auto a = was::data::make_synthetic({});
  torch::set_num_threads(1);
  const auto b = was::data::make_synthetic({});
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(a.train.images, b.train.images));
}

TEST(SyntheticTest, ShapesAndBalancedClasses) {
  was::data::SyntheticOptions o;
  o.train_size = 103;
  o.test_size = 50;
  o.num_classes = 5;
  o.channels = 3;
  o.image_size = 20;
  const auto s = was::data::make_synthetic(o);
  EXPECT_EQ(s.train.images.sizes(), (std::vector<int64_t>{103, 3, 20, 20}));
  EXPECT_EQ(s.test.images.sizes(), (std::vector<int64_t>{50, 3, 20, 20}));
  EXPECT_EQ(s.train.num_classes, 5);
  EXPECT_EQ(s.train.class_names.size(), 5u);
  const torch::Tensor counts = torch::bincount(s.train.labels, {}, 5);
  EXPECT_LE((counts.max() - counts.min()).item<int64_t>(), 1);
  EXPECT_TRUE(torch::equal(torch::bincount(s.test.labels, {}, 5), torch::full({5}, 10, torch::kLong)));
  EXPECT_EQ(s.normalization.mean.size(), 3u);
  // Not blank and not saturated.
  const double mean = s.train.images.to(torch::kDouble).mean().item<double>();
  EXPECT_GT(mean, 10.0);
  EXPECT_LT(mean, 200.0);
}

TEST(SyntheticTest, InvalidOptionsThrow) {
  for (auto change : std::vector<std::function<void(was::data::SyntheticOptions&)>>{
           [](auto& o) { o.train_size = 0; }, [](auto& o) { o.test_size = -1; }, [](auto& o) { o.num_classes = 1; },
           [](auto& o) { o.channels = 0; }, [](auto& o) { o.image_size = 2; }}) {
    was::data::SyntheticOptions o;
    change(o);
    EXPECT_THROW(was::data::make_synthetic(o), was::Error);
  }
}

TEST(SyntheticTest, SmallCnnLearnsItWellAboveChance) {
  torch::manual_seed(0);
  const auto split = was::data::make_synthetic({});
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)), torch::nn::ReLU(),
                            torch::nn::MaxPool2d(2), torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 3).padding(1)),
                            torch::nn::ReLU(), torch::nn::MaxPool2d(2), torch::nn::Flatten(),
                            torch::nn::Linear(16 * 4 * 4, 4));
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.02).momentum(0.9));
  BatchLoader train(split.train, split.normalization, 32, true, 0);
  int64_t step = 0;
  for (int64_t epoch = 0; step < 100; ++epoch) {
    for (int64_t i = 0; i < train.batches_per_epoch() && step < 100; ++i, ++step) {
      const auto b = train.batch(epoch, i);
      opt.zero_grad();
      torch::nn::functional::cross_entropy(net->forward(b.images), b.labels).backward();
      opt.step();
    }
  }
  torch::NoGradGuard no_grad;
  net->eval();
  const torch::Tensor logits = net->forward(was::data::normalize(split.test.images, split.normalization));
  const double accuracy = logits.argmax(1).eq(split.test.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_GT(accuracy, 0.8) << "chance is 0.25";
  std::cout << "[ info     ] test accuracy after 100 steps: " << accuracy << "\n";
}

// --- Loader -----------------------------------------------------------------------

TEST(LoaderTest, EverySampleExactlyOncePerEpoch) {
  const Dataset d = small_dataset(23);
  const auto norm = was::data::compute_normalization(d);
  BatchLoader loader(d, norm, 5, true, 42);
  EXPECT_EQ(loader.size(), 23);
  EXPECT_EQ(loader.batches_per_epoch(), 5);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> order = loader.order(epoch);
    std::sort(order.begin(), order.end());
    std::vector<int64_t> identity(23);
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(order, identity);
    // The batches together are the whole set (labels identify samples here).
    std::vector<torch::Tensor> images;
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) images.push_back(loader.batch(epoch, i).images);
    const torch::Tensor all = torch::cat(images);
    EXPECT_EQ(all.size(0), 23);
    const torch::Tensor expected = was::data::normalize(d.images, norm);
    EXPECT_TRUE(torch::allclose(all.sum(0), expected.sum(0), 1e-4, 1e-4));
  }
}

TEST(LoaderTest, BatchIsTheOrderSlice) {
  const Dataset d = small_dataset(23);
  const auto norm = was::data::compute_normalization(d);
  BatchLoader loader(d, norm, 5, true, 3);
  const auto order = loader.order(2);
  const auto b = loader.batch(2, 1);
  const torch::Tensor idx = torch::tensor(std::vector<int64_t>(order.begin() + 5, order.begin() + 10));
  EXPECT_TRUE(torch::equal(b.labels, d.labels.index_select(0, idx)));
  EXPECT_TRUE(torch::equal(b.images, was::data::normalize(d.images.index_select(0, idx), norm)));
  EXPECT_EQ(b.images.scalar_type(), torch::kFloat);
  EXPECT_EQ(b.labels.scalar_type(), torch::kLong);
}

TEST(LoaderTest, OrderDependsOnlyOnSeedAndEpoch) {
  const Dataset d = small_dataset(50);
  const auto norm = was::data::compute_normalization(d);
  BatchLoader a(d, norm, 8, true, 11), b(d, norm, 8, true, 11), c(d, norm, 8, true, 12);
  EXPECT_EQ(a.order(0), b.order(0));
  EXPECT_EQ(a.order(5), b.order(5));
  EXPECT_NE(a.order(0), a.order(1));
  EXPECT_NE(a.order(0), c.order(0));
  // A "resumed" loader asked for a mid-epoch batch first sees the same batch.
  const auto late = b.batch(3, 4);
  a.batch(0, 0);
  EXPECT_TRUE(torch::equal(a.batch(3, 4).labels, late.labels));
  EXPECT_TRUE(torch::equal(a.batch(3, 4).images, late.images));
}

TEST(LoaderTest, NoShuffleIsIdentity) {
  const Dataset d = small_dataset(10);
  BatchLoader loader(d, was::data::compute_normalization(d), 4, false, 99);
  std::vector<int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(loader.order(0), identity);
  EXPECT_EQ(loader.order(7), identity);
}

TEST(LoaderTest, LastBatchSizeAndDropLast) {
  const Dataset d = small_dataset(23);
  const auto norm = was::data::compute_normalization(d);
  BatchLoader keep(d, norm, 5, true, 1);
  EXPECT_EQ(keep.batches_per_epoch(), 5);
  EXPECT_EQ(keep.batch(0, 3).images.size(0), 5);
  EXPECT_EQ(keep.batch(0, 4).images.size(0), 3);
  EXPECT_EQ(keep.batch(0, 4).labels.size(0), 3);
  EXPECT_THROW(keep.batch(0, 5), was::Error);
  BatchLoader drop(d, norm, 5, true, 1, /*drop_last=*/true);
  EXPECT_EQ(drop.batches_per_epoch(), 4);
  EXPECT_EQ(drop.batch(0, 3).images.size(0), 5);
  EXPECT_THROW(drop.batch(0, 4), was::Error);
  BatchLoader exact(d.head(20), norm, 5, false, 1);
  EXPECT_EQ(exact.batches_per_epoch(), 4);
}

TEST(LoaderTest, RejectsBadArguments) {
  const Dataset d = small_dataset(10);
  const auto norm = was::data::compute_normalization(d);
  EXPECT_THAT(error_of([&] { BatchLoader(d, norm, 0, true, 0); }), HasSubstr("batch size"));
  EXPECT_THROW(BatchLoader(d, {{0.5}, {0.5}}, 4, true, 0), was::Error);
  BatchLoader loader(d, norm, 4, true, 0);
  EXPECT_THROW(loader.order(-1), was::Error);
}

TEST(LoaderTest, NormalisedTrainSetHasZeroMeanUnitStd) {
  was::data::SyntheticOptions o;
  o.channels = 3;
  const auto split = was::data::make_synthetic(o);
  BatchLoader loader(split.train, split.normalization, 64, true, 5);
  std::vector<torch::Tensor> batches;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) batches.push_back(loader.batch(0, i).images);
  const torch::Tensor all = torch::cat(batches).to(torch::kDouble);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(all.select(1, c).mean().item<double>(), 0.0, 1e-4);
    EXPECT_NEAR(all.select(1, c).std(false).item<double>(), 1.0, 1e-4);
  }
}

}  // namespace
