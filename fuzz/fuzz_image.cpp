// JPEG and PNG files, as image folders hold them (decoded by content).
#include <vector>

#include "fuzz_input.h"
#include "was/data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  was::fuzz::expect_only_was_errors([&] { was::data::decode_image(bytes, "fuzz input"); });
  return 0;
}
