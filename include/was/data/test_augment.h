// Seeded test-time augmentations of whole test sets (WAS-SPEC §6): the
// rotations, translations and crops of the paper's robustness tables.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

/// One test-time augmentation and its strength.
///   rotate  lo:hi   degrees, angle ~ U(lo, hi), bilinear, zero fill
///   translate lo:hi the fractions fx:fy, shift round(U(-fx*W, fx*W)) columns
///                   and round(U(-fy*H, fy*H)) rows, zero fill
///   crop    lo:hi   area fraction s ~ U(lo, hi) of a square-ish window at a
///                   random position, resized back to H x W (bilinear)
struct TestAugmentation {
  enum class Kind { kRotate, kTranslate, kCrop };
  Kind kind = Kind::kRotate;
  double lo = 0.0, hi = 0.0;

  /// Parses "rotate=0:45", "translate=0.1:0.1", "crop=0.5:1"; throws
  /// was::Error naming the problem for anything else.
  static TestAugmentation parse(const std::string& spec);
  /// `kind` is "rotate", "translate" or "crop"; `range` is "a:b".
  static TestAugmentation parse(const std::string& kind, const std::string& range);
  /// "rotate=0:45", the form parse() reads.
  std::string to_string() const;
  /// "rotate", "translate" or "crop".
  std::string kind_name() const;
  /// One number for plots, growing with harshness: the largest angle, the
  /// largest shift fraction, or the smallest fraction of the image removed.
  double strength() const;
};

/// What one image gets: an angle, a shift, or a crop window.
struct TestAugmentParams {
  double degrees = 0.0;
  int64_t dx = 0, dy = 0;
  int64_t y0 = 0, x0 = 0, crop_h = 0, crop_w = 0;
};

/// The draw for image `index` of an H x W set, from
/// was::CounterStream(seed, kTestAugment, kind, index): it depends on nothing
/// else, so any subset or batch order sees the same augmented images.
TestAugmentParams draw_test_augmentation(const TestAugmentation& augmentation, uint64_t seed, int64_t index,
                                         int64_t height, int64_t width);

/// Applies one TestAugmentParams per image to uint8 [N, C, H, W] and returns
/// uint8 [N, C, H, W] (bilinear results rounded to the nearest level).
torch::Tensor apply_test_augmentation(const torch::Tensor& images_u8, const TestAugmentation& augmentation,
                                      const std::vector<TestAugmentParams>& params);

/// The whole set augmented, image i with the draw for index i.
Dataset augment_dataset(const Dataset& data, const TestAugmentation& augmentation, uint64_t seed);

/// The paper's sweeps (its Tables 3-5): rotate 0:15 ... 0:180, translate
/// 0.1:0.1 ... 0.4:0.4, crop 0.8:1 ... 0.2:0.4.
std::vector<TestAugmentation> paper_sweep(TestAugmentation::Kind kind);

}  // namespace was::data
