// IDX image and label files (Fashion-MNIST's format), raw or gzip.
#include "fuzz_input.h"
#include "was/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = was::fuzz::as_file(data, size, ".idx");
  was::fuzz::expect_only_was_errors([&] { was::data::read_idx_images(path); });
  was::fuzz::expect_only_was_errors([&] { was::data::read_idx_labels(path); });
  return 0;
}
