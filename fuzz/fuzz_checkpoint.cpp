// Checkpoints (`was train`) and inference files (`was export`): the zip
// check, the metadata and the model rebuilt from it.
#include "fuzz_input.h"
#include "was/io/checkpoint.h"
#include "was/io/export.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = was::fuzz::as_file(data, size, ".pt");
  was::fuzz::expect_only_was_errors([&] { was::load_checkpoint(path); });
  was::fuzz::expect_only_was_errors([&] { was::load_inference(path); });
  return 0;
}
