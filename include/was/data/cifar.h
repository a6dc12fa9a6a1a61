// Readers of the CIFAR-10 and CIFAR-100 binary layouts (Krizhevsky, 2009).
//
// A file is a sequence of fixed-size records: the label byte(s), then 3072
// pixel bytes, the R, G and B planes of a 32x32 image, each row-major.
//   CIFAR-10  (cifar-10-batches-bin): data_batch_1..5.bin (10000 records each),
//             test_batch.bin (10000); 1 label byte; names in batches.meta.txt.
//   CIFAR-100 (cifar-100-binary):     train.bin (50000), test.bin (10000);
//             2 label bytes, coarse (20 classes) then fine (100 classes);
//             names in coarse_label_names.txt and fine_label_names.txt.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

constexpr int64_t kCifarImageSide = 32;
constexpr int64_t kCifarChannels = 3;
/// One image: R, G, B planes of 32x32 bytes.
constexpr int64_t kCifarPixelBytes = kCifarChannels * kCifarImageSide * kCifarImageSide;  // 3072
constexpr int64_t kCifar10LabelBytes = 1;
constexpr int64_t kCifar100LabelBytes = 2;                                        ///< coarse, then fine
constexpr int64_t kCifar10RecordBytes = kCifar10LabelBytes + kCifarPixelBytes;    // 3073
constexpr int64_t kCifar100RecordBytes = kCifar100LabelBytes + kCifarPixelBytes;  // 3074
constexpr int64_t kCifar10Classes = 10;
constexpr int64_t kCifar100FineClasses = 100;
constexpr int64_t kCifar100CoarseClasses = 20;
constexpr int64_t kCifar10TrainFiles = 5;          ///< data_batch_1.bin .. data_batch_5.bin
constexpr int64_t kCifar10RecordsPerFile = 10000;  ///< in each of the six CIFAR-10 files
constexpr int64_t kCifar100TrainRecords = 50000;   ///< train.bin
constexpr int64_t kCifar100TestRecords = 10000;    ///< test.bin

/// Which CIFAR-100 label a Dataset carries.
enum class CifarLabels { kFine, kCoarse };

struct CifarOptions {
  CifarLabels labels = CifarLabels::kFine;  ///< CIFAR-100 only: the 100 fine or the 20 coarse classes
  /// Require the standard record count of every file. Off: any whole number of
  /// records (subsets, tests).
  bool check_counts = true;
  /// Read only the training files; the test split stays empty, its file unopened.
  bool training_only = false;
};

/// Reads one CIFAR-10 file as uint8 [N, 3, 32, 32] and labels [N]. Throws
/// was::Error naming the file if it is missing, not a whole number of
/// 3073-byte records, not `expected_records` records (when > 0), or holds a
/// label outside 0..9. No class names are set.
Dataset read_cifar10_file(const std::string& path, int64_t expected_records = 0);

/// Reads one CIFAR-100 file; `labels` picks the fine or the coarse byte. Both
/// bytes are range-checked. Errors as read_cifar10_file.
Dataset read_cifar100_file(const std::string& path, CifarLabels labels = CifarLabels::kFine,
                           int64_t expected_records = 0);

/// CIFAR-10 from `dir` (or `dir/cifar-10-batches-bin`): 50000 train images from
/// the five data batches in order, 10000 test images, class names from
/// batches.meta.txt when present (else the standard ten). Normalisation from
/// the train split. Throws was::Error naming the directory or file, with a hint
/// on how to create the files.
Split load_cifar10(const std::string& dir, const CifarOptions& options = {});

/// CIFAR-100 from `dir` (or `dir/cifar-100-binary`): train.bin and test.bin,
/// fine labels unless options.labels is kCoarse; class names from
/// fine_label_names.txt / coarse_label_names.txt when present (else the
/// standard ones). Errors as load_cifar10.
Split load_cifar100(const std::string& dir, const CifarOptions& options = {});

/// The standard class names, in label order.
const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_class_names(CifarLabels labels);

}  // namespace was::data
