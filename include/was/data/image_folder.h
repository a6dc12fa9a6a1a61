// Image folders in torchvision's ImageFolder layout: root/<class>/<image>,
// classes sorted by name, images decoded once (in parallel) and cached in
// memory as uint8 [N, 3, H, W].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

struct ImageFolderOptions {
  /// Resize every image to image_size x image_size (bilinear, see
  /// resize_image). 0 keeps the images' own size, which all must then share.
  int64_t image_size = 0;
  /// Decoding threads; 0 uses every core.
  int64_t threads = 0;
  /// Read only train/; the test split stays empty, test/ is never listed.
  bool training_only = false;
};

/// The class folders of `root`, sorted by name (byte order, as Python's
/// sorted()). Hidden folders (a leading '.') are not classes. Throws
/// was::Error if `root` is missing or holds no class folder.
std::vector<std::string> image_folder_classes(const std::string& root);

/// The image files of one class folder, searched recursively and sorted by
/// path: files ending in .jpg, .jpeg or .png (any case). Hidden files are
/// skipped; any other file is an error naming it, as is an empty folder.
std::vector<std::string> image_folder_files(const std::string& class_dir);

/// Reads root/<class>/... with labels 0..K-1 in class order; samples in class
/// order, then path order (as torchvision). `classes`, when given, fixes the
/// class list and its order (every folder of `root` must be in it; a class
/// without a folder has no samples). Throws was::Error naming the file for an
/// unreadable or non-image file, an empty class folder, or, when
/// options.image_size is 0, images whose size differs from the first one's.
Dataset load_image_folder(const std::string& root, const ImageFolderOptions& options = {},
                          const std::vector<std::string>& classes = {});

/// root/train/<class>/... and root/test/<class>/... as a Split named
/// "imagefolder": test classes must be among the train classes and take their
/// labels; without options.image_size, test images must have the train
/// images' size. The normalisation is the train split's.
Split load_image_folder_split(const std::string& root, const ImageFolderOptions& options = {});

}  // namespace was::data
