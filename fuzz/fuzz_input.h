// What every fuzz target shares: the input as a file (the readers take
// paths), and the one outcome besides success that the contract allows, a
// was::Error. Anything else (another exception, a crash, a sanitizer report)
// is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "was/core/error.h"

namespace was::fuzz {

/// The input written to a per-process file with `suffix` (some readers go by
/// the name: .gz, .json).
inline std::string as_file(const uint8_t* data, size_t size, const std::string& suffix) {
  const std::string path = "/tmp/was_fuzz_" + std::to_string(::getpid()) + suffix;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

template <typename F>
void expect_only_was_errors(F&& body) {
  try {
    body();
  } catch (const was::Error&) {
    // the documented refusal of bad input
  }
}

}  // namespace was::fuzz
