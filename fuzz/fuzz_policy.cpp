// The strings users type: policies (--was), modes (--mode), test-time
// augmentations (robustness:AUG).
#include <string>

#include "fuzz_input.h"
#include "was/data/test_augment.h"
#include "was/policy.h"
#include "was/shadow.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  was::fuzz::expect_only_was_errors([&] { was::Policy::parse(text).to_string(); });
  was::fuzz::expect_only_was_errors([&] { was::Mode::parse(text).key(); });
  was::fuzz::expect_only_was_errors([&] { was::data::TestAugmentation::parse(text); });
  return 0;
}
