// Experiment files (`was experiment`), with and without a budget.
#include "fuzz_input.h"
#include "was/run/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = was::fuzz::as_file(data, size, ".json");
  was::fuzz::expect_only_was_errors([&] { was::Experiment::load(path, "").to_json(); });
  was::fuzz::expect_only_was_errors([&] { was::Experiment::load(path, "cpu"); });
  return 0;
}
