// Tests of the CIFAR-10 and CIFAR-100 binary readers, on files the tests write
// in the real layouts, and on the real CIFAR-10 (JPEG archive) when present.
#include "was/data/cifar.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <unistd.h>
#include "expect_error.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "was/core/error.h"
#include "was/data/datasets.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using was::data::CifarLabels;
using was::data::CifarOptions;

using was::testing::TempDir;
using was::testing::thrown_error;

std::string message_of(const was::Error& e) { return e.what(); }

/// `n` records of `label_bytes` + 3072 bytes: labels from `label_fn(i, byte)`,
/// pixels a pattern that differs per record, channel, row and column.
torch::Tensor make_records(int64_t n, int64_t label_bytes, const std::function<int64_t(int64_t, int64_t)>& label_fn,
                           int64_t salt = 0) {
  const int64_t pixels = was::data::kCifarPixelBytes;
  torch::Tensor records = torch::empty({n, label_bytes + pixels}, torch::kByte);
  // uint8 sums wrap modulo 256: no large temporaries, even for 50000 records.
  const torch::Tensor i = torch::arange(n, torch::kLong).view({n, 1});
  const torch::Tensor j = torch::arange(pixels, torch::kLong).view({1, pixels});
  const torch::Tensor row = ((i * 131 + salt * 17) % 256).to(torch::kByte);
  const torch::Tensor col = ((j * 7 + (j / 1024) * 50) % 256).to(torch::kByte);
  records.narrow(1, label_bytes, pixels).copy_(row + col);
  auto* p = records.data_ptr<uint8_t>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < label_bytes; ++b) p[r * (label_bytes + pixels) + b] = static_cast<uint8_t>(label_fn(r, b));
  return records;
}

void write_records(const std::string& path, const torch::Tensor& records) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(records.data_ptr<uint8_t>()), static_cast<std::streamsize>(records.numel()));
}

torch::Tensor images_of(const torch::Tensor& records, int64_t label_bytes) {
  return records.narrow(1, label_bytes, was::data::kCifarPixelBytes).reshape({records.size(0), 3, 32, 32});
}

/// A CIFAR-10 directory with `per_file` records in each of the six files; returns the records.
std::vector<torch::Tensor> write_cifar10_dir(const fs::path& dir, int64_t per_file) {
  fs::create_directories(dir);
  std::vector<torch::Tensor> all;
  for (int b = 1; b <= 6; ++b) {
    const auto records = make_records(
        per_file, 1, [b](int64_t i, int64_t) { return (i * 3 + b) % 10; }, b);
    write_records((dir / (b <= 5 ? "data_batch_" + std::to_string(b) + ".bin" : "test_batch.bin")).string(), records);
    all.push_back(records);
  }
  return all;
}

CifarOptions any_count() {
  CifarOptions o;
  o.check_counts = false;
  return o;
}

// --- layout constants --------------------------------------------------------------

TEST(CifarTest, LayoutConstants) {
  static_assert(was::data::kCifarPixelBytes == 3072);
  static_assert(was::data::kCifar10RecordBytes == 3073);
  static_assert(was::data::kCifar100RecordBytes == 3074);
  EXPECT_EQ(was::data::cifar10_class_names().size(), 10u);
  EXPECT_EQ(was::data::cifar100_class_names(CifarLabels::kFine).size(), 100u);
  EXPECT_EQ(was::data::cifar100_class_names(CifarLabels::kCoarse).size(), 20u);
  EXPECT_EQ(was::data::cifar100_class_names(CifarLabels::kFine)[99], "worm");
  EXPECT_EQ(was::data::cifar100_class_names(CifarLabels::kCoarse)[19], "vehicles_2");
}

// --- CIFAR-10 -------------------------------------------------------------------------

TEST(CifarTest, Cifar10ReadsRecordsPlanesAndLabels) {
  TempDir dir;
  const auto records = write_cifar10_dir(dir.path(), 7);
  const auto split = was::data::load_cifar10(dir.path().string(), any_count());
  EXPECT_EQ(split.name, "cifar10");
  ASSERT_EQ(split.train.images.sizes(), (std::vector<int64_t>{35, 3, 32, 32}));
  ASSERT_EQ(split.test.images.sizes(), (std::vector<int64_t>{7, 3, 32, 32}));
  // The five data batches in order, then the test batch.
  for (int b = 0; b < 5; ++b) {
    EXPECT_TRUE(torch::equal(split.train.images.slice(0, 7 * b, 7 * b + 7), images_of(records[b], 1))) << b;
    EXPECT_TRUE(torch::equal(split.train.labels.slice(0, 7 * b, 7 * b + 7), records[b].select(1, 0).to(torch::kLong)));
  }
  EXPECT_TRUE(torch::equal(split.test.images, images_of(records[5], 1)));
  // Planes: byte 1 + 1024 * c + 32 * y + x of a record is pixel (c, y, x).
  const auto* raw = records[5].data_ptr<uint8_t>();
  EXPECT_EQ(split.test.images[2][1][3][4].item<int64_t>(), raw[2 * 3073 + 1 + 1024 + 3 * 32 + 4]);
  EXPECT_EQ(split.train.num_classes, 10);
  EXPECT_EQ(split.train.class_names, was::data::cifar10_class_names());  // no batches.meta.txt
  const auto norm = was::data::compute_normalization(split.train);
  EXPECT_EQ(split.normalization.mean, norm.mean);
  EXPECT_EQ(split.normalization.std, norm.std);
}

TEST(CifarTest, Cifar10ClassNamesFromMetaFileAndSubdirectory) {
  TempDir dir;
  const fs::path sub = dir.path() / "cifar-10-batches-bin";  // as the official archive unpacks
  write_cifar10_dir(sub, 3);
  std::ofstream(sub / "batches.meta.txt") << "a0\nb1\nc2\nd3\ne4\nf5\ng6\nh7\ni8\nj9\n\n\n";
  const auto split = was::data::load_cifar10(dir.path().string(), any_count());
  ASSERT_EQ(split.train.class_names.size(), 10u);
  EXPECT_EQ(split.train.class_names[0], "a0");
  EXPECT_EQ(split.test.class_names[9], "j9");
  std::ofstream(sub / "batches.meta.txt") << "only\ntwo\n";
  const auto e = thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); });
  EXPECT_THAT(message_of(e), HasSubstr((sub / "batches.meta.txt").string()));
  EXPECT_THAT(message_of(e), HasSubstr("2 class names, expected 10"));
}

TEST(CifarTest, Cifar10StandardCountsAreChecked) {
  TempDir dir;
  write_cifar10_dir(dir.path(), 3);
  // By default every file must hold 10000 records.
  const auto e = thrown_error([&] { was::data::load_cifar10(dir.path().string()); });
  EXPECT_THAT(message_of(e), HasSubstr(dir.file("data_batch_1.bin")));
  EXPECT_THAT(message_of(e), HasSubstr("holds 3 records, expected 10000"));
}

TEST(CifarTest, Cifar10OversizedFileByOneRecord) {
  TempDir dir;
  write_cifar10_dir(dir.path(), 1);
  write_records(dir.file("data_batch_1.bin"), make_records(10001, 1, [](int64_t i, int64_t) { return i % 10; }));
  const auto e = thrown_error([&] { was::data::load_cifar10(dir.path().string()); });
  EXPECT_THAT(message_of(e), HasSubstr(dir.file("data_batch_1.bin")));
  EXPECT_THAT(message_of(e), HasSubstr("holds 10001 records, expected 10000"));
}

TEST(CifarTest, Cifar10TruncatedAndOversizedByBytes) {
  TempDir dir;
  write_cifar10_dir(dir.path(), 4);
  const std::string path = dir.file("data_batch_3.bin");
  fs::resize_file(path, 4 * 3073 - 100);  // truncated inside the last record
  auto e = thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); });
  EXPECT_THAT(message_of(e), HasSubstr(path));
  EXPECT_THAT(message_of(e), HasSubstr(std::to_string(4 * 3073 - 100) + " bytes"));
  EXPECT_THAT(message_of(e), HasSubstr("3073-byte records"));
  EXPECT_THAT(e.hint(), HasSubstr("to_cifar_bin.py"));
  fs::resize_file(path, 4 * 3073 + 5);  // trailing bytes
  e = thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); });
  EXPECT_THAT(message_of(e), HasSubstr(path));
  EXPECT_THAT(message_of(e), HasSubstr("not a whole number"));
  fs::resize_file(path, 0);
  EXPECT_THAT(message_of(thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); })),
              HasSubstr(path));
}

TEST(CifarTest, Cifar100FileGivenAsCifar10SaysSo) {
  TempDir dir;
  const std::string path = dir.file("x.bin");
  write_records(path, make_records(3, 2, [](int64_t, int64_t) { return 1; }));  // 3 * 3074 bytes
  const std::string msg = message_of(thrown_error([&] { was::data::read_cifar10_file(path); }));
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("fits the CIFAR-100 layout"));
}

TEST(CifarTest, Cifar10LabelOutOfRangeNamesFileAndRecord) {
  TempDir dir;
  write_cifar10_dir(dir.path(), 5);
  const std::string path = dir.file("test_batch.bin");
  write_records(path, make_records(5, 1, [](int64_t i, int64_t) { return i == 3 ? 10 : i; }));
  const std::string msg = message_of(thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); }));
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("record 3 has label 10, outside 0..9"));
}

TEST(CifarTest, Cifar10MissingDirectoryOrFileHintsAtConversionScript) {
  TempDir dir;
  const std::string missing = dir.file("nowhere");
  auto e = thrown_error([&] { was::data::load_cifar10(missing); });
  EXPECT_THAT(message_of(e), HasSubstr(missing));
  EXPECT_THAT(e.hint(), HasSubstr("python3 ../shared/datasets/cifar10-jpeg/to_cifar_bin.py DIR"));
  e = thrown_error([&] { was::data::load_dataset("cifar10", ""); });
  EXPECT_THAT(message_of(e), HasSubstr("no default location"));
  EXPECT_THAT(e.hint(), HasSubstr("to_cifar_bin.py"));
  EXPECT_THAT(e.hint(), HasSubstr("--data-dir"));
  // An empty directory, then one file missing.
  e = thrown_error([&] { was::data::load_cifar10(dir.path().string()); });
  EXPECT_THAT(message_of(e), HasSubstr("holds no data_batch_1.bin"));
  write_cifar10_dir(dir.path(), 2);
  fs::remove(dir.file("test_batch.bin"));
  e = thrown_error([&] { was::data::load_cifar10(dir.path().string(), any_count()); });
  EXPECT_THAT(message_of(e), HasSubstr(dir.file("test_batch.bin")));
  EXPECT_THAT(message_of(e), HasSubstr("does not exist"));
}

// --- CIFAR-100 ------------------------------------------------------------------------

int64_t fine_label(int64_t i) { return (i * 37 + 11) % 100; }
int64_t coarse_label(int64_t i) { return fine_label(i) % 20; }
int64_t cifar100_label(int64_t i, int64_t byte) { return byte == 0 ? coarse_label(i) : fine_label(i); }

TEST(CifarTest, Cifar100RealLayoutFullSizeFineAndCoarse) {
  TempDir dir;
  const auto train = make_records(was::data::kCifar100TrainRecords, 2, cifar100_label, 1);
  const auto test = make_records(was::data::kCifar100TestRecords, 2, cifar100_label, 2);
  write_records(dir.file("train.bin"), train);
  write_records(dir.file("test.bin"), test);
  EXPECT_EQ(fs::file_size(dir.file("train.bin")), 50000u * 3074u);

  const auto fine = was::data::load_dataset("cifar100", dir.path().string());
  EXPECT_EQ(fine.name, "cifar100");
  ASSERT_EQ(fine.train.images.sizes(), (std::vector<int64_t>{50000, 3, 32, 32}));
  ASSERT_EQ(fine.test.images.sizes(), (std::vector<int64_t>{10000, 3, 32, 32}));
  EXPECT_TRUE(torch::equal(fine.train.images, images_of(train, 2)));
  EXPECT_TRUE(torch::equal(fine.test.images, images_of(test, 2)));
  EXPECT_TRUE(torch::equal(fine.train.labels, train.select(1, 1).to(torch::kLong)));
  EXPECT_EQ(fine.train.num_classes, 100);
  EXPECT_EQ(fine.train.class_names[0], "apple");
  EXPECT_EQ(fine.train.labels[5].item<int64_t>(), fine_label(5));

  was::data::DatasetOptions options;
  options.cifar100_labels = CifarLabels::kCoarse;
  const auto coarse = was::data::load_dataset("cifar100", dir.path().string(), options);
  EXPECT_EQ(coarse.train.num_classes, 20);
  EXPECT_TRUE(torch::equal(coarse.test.labels, test.select(1, 0).to(torch::kLong)));
  EXPECT_EQ(coarse.test.class_names[0], "aquatic_mammals");
  EXPECT_TRUE(torch::equal(coarse.train.images, fine.train.images));
}

TEST(CifarTest, Cifar100ClassNameFilesAndSubdirectory) {
  TempDir dir;
  const fs::path sub = dir.path() / "cifar-100-binary";
  fs::create_directories(sub);
  write_records((sub / "train.bin").string(), make_records(6, 2, cifar100_label));
  write_records((sub / "test.bin").string(), make_records(4, 2, cifar100_label));
  {
    std::ofstream fine(sub / "fine_label_names.txt"), coarse(sub / "coarse_label_names.txt");
    for (int k = 0; k < 100; ++k) fine << "fine" << k << "\n";
    for (int k = 0; k < 20; ++k) coarse << "coarse" << k << "\n";
  }
  CifarOptions o = any_count();
  EXPECT_EQ(was::data::load_cifar100(dir.path().string(), o).train.class_names[42], "fine42");
  o.labels = CifarLabels::kCoarse;
  EXPECT_EQ(was::data::load_cifar100(dir.path().string(), o).test.class_names[7], "coarse7");
}

TEST(CifarTest, Cifar100CountsSizesAndLabelRanges) {
  TempDir dir;
  write_records(dir.file("train.bin"), make_records(6, 2, cifar100_label));
  write_records(dir.file("test.bin"), make_records(4, 2, cifar100_label));
  // Standard counts by default.
  EXPECT_THAT(message_of(thrown_error([&] { was::data::load_cifar100(dir.path().string()); })),
              HasSubstr("holds 6 records, expected 50000"));
  // Truncated.
  fs::resize_file(dir.file("test.bin"), 4 * 3074 - 1);
  auto msg = message_of(thrown_error([&] { was::data::load_cifar100(dir.path().string(), any_count()); }));
  EXPECT_THAT(msg, HasSubstr(dir.file("test.bin")));
  EXPECT_THAT(msg, HasSubstr("3074-byte records (2 label bytes + 3072 pixels)"));
  // Fine label 100, and coarse label 20, are both out of range, whichever labels are used.
  write_records(dir.file("test.bin"),
                make_records(4, 2, [](int64_t i, int64_t b) { return b == 1 && i == 2 ? 100 : cifar100_label(i, b); }));
  msg = message_of(thrown_error([&] { was::data::load_cifar100(dir.path().string(), any_count()); }));
  EXPECT_THAT(msg, HasSubstr(dir.file("test.bin")));
  EXPECT_THAT(msg, HasSubstr("record 2 has fine label 100, outside 0..99"));
  write_records(dir.file("test.bin"),
                make_records(4, 2, [](int64_t i, int64_t b) { return b == 0 && i == 1 ? 20 : cifar100_label(i, b); }));
  CifarOptions fine = any_count();
  msg = message_of(thrown_error([&] { was::data::load_cifar100(dir.path().string(), fine); }));
  EXPECT_THAT(msg, HasSubstr("record 1 has coarse label 20, outside 0..19"));
  // Missing directory.
  const auto e = thrown_error([&] { was::data::load_cifar100(dir.file("nowhere")); });
  EXPECT_THAT(message_of(e), HasSubstr(dir.file("nowhere")));
  EXPECT_THAT(e.hint(), HasSubstr("cifar-100-binary"));
}

TEST(CifarTest, OptionsThatDoNotApplyAreRefused) {
  was::data::DatasetOptions o;
  o.image_size = 32;
  EXPECT_THAT(message_of(thrown_error([&] { was::data::load_dataset("cifar10", "/nowhere", o); })),
              HasSubstr("image size"));
  o = {};
  o.cifar100_labels = CifarLabels::kCoarse;
  EXPECT_THAT(message_of(thrown_error([&] { was::data::load_dataset("cifar10", "/nowhere", o); })),
              HasSubstr("coarse labels"));
}

// --- the real CIFAR-10 ----------------------------------------------------------------
//
// ../shared/datasets/cifar10-jpeg/cifar10-jpeg.tar.gz holds the 60,000 images as
// JPEG files; its to_cifar_bin.py decodes them with PIL and writes the binary
// layout, shuffling each split with a fixed numpy permutation (train first, then
// test, from default_rng(20261127)). The test reads the tree as an image folder
// and the script's output as CIFAR-10, and matches them record by record.
//
// Tolerance: both decoders are libjpeg-turbo with default settings, so the
// pixels should agree exactly; the test allows |difference| <= 2 per value
// (IDCT implementations may differ by a rounding step) and reports the
// largest difference it saw.

constexpr int kJpegTolerance = 2;

std::string cifar10_jpeg_dir() {
  if (const char* env = std::getenv("WAS_CIFAR10_JPEG_DIR")) return env;
#ifdef WAS_CIFAR10_JPEG_DIR
  return WAS_CIFAR10_JPEG_DIR;
#else
  return "";
#endif
}

/// A Python 3 with PIL and numpy (Debian's /usr/bin/python3 first), or "".
std::string python_with_pil() {
  for (const std::string py : {"/usr/bin/python3", "python3"}) {
    if (std::system((py + " -c 'import PIL, numpy' >/dev/null 2>&1").c_str()) == 0) return py;
  }
  return "";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class CifarRealTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path source = cifar10_jpeg_dir();
    archive_ = source / "cifar10-jpeg.tar.gz";
    if (source.empty() || !fs::exists(archive_)) {
      skip_ = "the CIFAR-10 JPEG archive is not at '" + archive_.string() +
              "' (set WAS_CIFAR10_JPEG_DIR to the directory holding cifar10-jpeg.tar.gz)";
      return;
    }
    dir_ = std::make_unique<TempDir>();
    // The conversion (PIL, one core) runs while this process extracts and decodes.
    python_ = python_with_pil();
    if (!python_.empty()) {
      const fs::path out = dir_->path() / "bin";
      const std::string convert = python_ + " " + shell_quote((source / "to_cifar_bin.py").string()) + " " +
                                  shell_quote(out.string()) + " " + shell_quote(archive_.string()) + " >/dev/null";
      // The script's permutations, in the order it draws them: train, then test.
      const std::string perm =
          python_ +
          " -c \"import sys, numpy as np; r = np.random.default_rng(20261127); "
          "np.concatenate([r.permutation(50000), r.permutation(10000)]).astype('<i8').tofile(sys.argv[1])\" " +
          shell_quote((dir_->path() / "perm.bin").string());
      converter_ = std::thread([convert, perm] {
        const auto start = std::chrono::steady_clock::now();
        convert_status_ = std::system(convert.c_str());
        convert_seconds_ = seconds_since(start);
        if (convert_status_ == 0) convert_status_ = std::system(perm.c_str());
      });
    }
    const fs::path jpeg = dir_->path() / "jpeg";
    fs::create_directories(jpeg);
    auto start = std::chrono::steady_clock::now();
    if (std::system(("tar -xzf " + shell_quote(archive_.string()) + " -C " + shell_quote(jpeg.string())).c_str()) !=
        0) {
      setup_error_ = "tar -xzf " + archive_.string() + " failed";
      return;
    }
    std::cout << "[ info     ] extracted the archive in " << seconds_since(start) << " s\n";
    start = std::chrono::steady_clock::now();
    try {
      folder_ = was::data::load_dataset("imagefolder", jpeg.string());
    } catch (const std::exception& e) {
      setup_error_ = e.what();
      return;
    }
    std::cout << "[ info     ] image folder: 60000 JPEGs decoded in " << seconds_since(start) << " s\n";
  }

  static void TearDownTestSuite() {
    if (converter_.joinable()) converter_.join();
    folder_.reset();
    dir_.reset();
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ASSERT_TRUE(folder_.has_value());
  }

  static fs::path archive_;
  static std::string skip_, setup_error_, python_;
  static std::unique_ptr<TempDir> dir_;
  static std::optional<was::data::Split> folder_;
  static std::thread converter_;
  static int convert_status_;
  static double convert_seconds_;
};

fs::path CifarRealTest::archive_;
std::string CifarRealTest::skip_, CifarRealTest::setup_error_, CifarRealTest::python_;
std::unique_ptr<TempDir> CifarRealTest::dir_;
std::optional<was::data::Split> CifarRealTest::folder_;
std::thread CifarRealTest::converter_;
int CifarRealTest::convert_status_ = -1;
double CifarRealTest::convert_seconds_ = 0;

void expect_cifar10_shape(const was::data::Split& s) {
  EXPECT_EQ(s.train.images.sizes(), (std::vector<int64_t>{50000, 3, 32, 32}));
  EXPECT_EQ(s.test.images.sizes(), (std::vector<int64_t>{10000, 3, 32, 32}));
  EXPECT_EQ(s.train.class_names, was::data::cifar10_class_names());
  EXPECT_TRUE(torch::equal(torch::bincount(s.train.labels), torch::full({10}, 5000, torch::kLong)));
  EXPECT_TRUE(torch::equal(torch::bincount(s.test.labels), torch::full({10}, 1000, torch::kLong)));
}

TEST_F(CifarRealTest, ImageFolderHoldsAll60000Images) {
  expect_cifar10_shape(*folder_);
  // Natural images: the usual CIFAR-10 statistics (here with light JPEG loss).
  EXPECT_NEAR(folder_->normalization.mean[0], 0.491, 0.01);
  EXPECT_NEAR(folder_->normalization.std[2], 0.262, 0.01);
}

TEST_F(CifarRealTest, BinaryFromScriptGivesTheSameImages) {
  if (python_.empty()) {
    GTEST_SKIP() << "no python3 with PIL and numpy to run to_cifar_bin.py "
                    "(apt-get install python3-pil python3-numpy)";
  }
  converter_.join();
  ASSERT_EQ(convert_status_, 0) << "to_cifar_bin.py failed";
  std::cout << "[ info     ] to_cifar_bin.py ran in " << convert_seconds_ << " s\n";
  const auto start = std::chrono::steady_clock::now();
  const auto binary = was::data::load_dataset("cifar10", (dir_->path() / "bin").string());
  std::cout << "[ info     ] CIFAR-10 binary read in " << seconds_since(start) << " s\n";
  expect_cifar10_shape(binary);  // class names from the script's batches.meta.txt

  // Record r of a split is the folder image perm[r] (the folder's order is the
  // script's sorted order: class, then file name).
  const torch::Tensor perm = torch::from_file((dir_->path() / "perm.bin").string(), false, 60000, torch::kLong);
  const torch::Tensor train_perm = perm.slice(0, 0, 50000), test_perm = perm.slice(0, 50000);
  EXPECT_TRUE(torch::equal(binary.train.labels, folder_->train.labels.index_select(0, train_perm)));
  EXPECT_TRUE(torch::equal(binary.test.labels, folder_->test.labels.index_select(0, test_perm)));

  // The first test image, both ways.
  const int64_t first = test_perm[0].item<int64_t>();
  const torch::Tensor a = binary.test.images[0].to(torch::kInt);
  const torch::Tensor b = folder_->test.images[first].to(torch::kInt);
  const int64_t first_diff = (a - b).abs().max().item<int64_t>();
  std::cout << "[ info     ] first test record = image folder test image " << first << " (class "
            << binary.test.class_names[binary.test.labels[0].item<int64_t>()] << "), largest difference " << first_diff
            << ", " << (a != b).sum().item<int64_t>() << " of 3072 values differ\n";
  EXPECT_LE(first_diff, kJpegTolerance);
  // It is the closest image of the folder's test set, by far.
  const torch::Tensor all = folder_->test.images.to(torch::kInt);
  const torch::Tensor distance = (all - a.unsqueeze(0)).abs().amax({1, 2, 3});
  EXPECT_EQ(distance.argmin().item<int64_t>(), first);
  EXPECT_GT(std::get<0>(distance.kthvalue(2)).item<int64_t>(), 10 * kJpegTolerance);

  // And every other image.
  for (const auto& [name, bin, fold, p] :
       {std::make_tuple("train", binary.train.images, folder_->train.images, train_perm),
        std::make_tuple("test", binary.test.images, folder_->test.images, test_perm)}) {
    const torch::Tensor diff = (bin.to(torch::kShort) - fold.index_select(0, p).to(torch::kShort)).abs();
    const int64_t largest = diff.max().item<int64_t>();
    std::cout << "[ info     ] " << name << ": largest difference " << largest << ", "
              << (diff > 0).sum().item<int64_t>() << " of " << diff.numel() << " values differ\n";
    EXPECT_LE(largest, kJpegTolerance) << name;
  }
}

}  // namespace
