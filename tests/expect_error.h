// Running code that must throw was::Error, and looking at what it said.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "was/core/error.h"

namespace was::testing {

/// Runs `f`, expects a was::Error, and returns it (a failure otherwise).
template <typename F>
was::Error thrown_error(F&& f) {
  try {
    f();
  } catch (const was::Error& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected was::Error, got another exception: " << e.what();
    return was::Error("");
  }
  ADD_FAILURE() << "expected was::Error, nothing was thrown";
  return was::Error("");
}

/// The message of the was::Error `f` throws, with its hint after " | hint: ".
template <typename F>
std::string error_of(F&& f) {
  const was::Error e = thrown_error(f);
  return e.hint().empty() ? std::string(e.what()) : std::string(e.what()) + " | hint: " + e.hint();
}

}  // namespace was::testing
