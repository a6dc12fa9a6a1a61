// CIFAR-10 and CIFAR-100 binary batches.
#include "fuzz_input.h"
#include "was/data/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = was::fuzz::as_file(data, size, ".bin");
  was::fuzz::expect_only_was_errors([&] { was::data::read_cifar10_file(path); });
  was::fuzz::expect_only_was_errors([&] { was::data::read_cifar100_file(path); });
  return 0;
}
