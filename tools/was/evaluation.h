// The terminal tables and CSV of `was eval` and `was experiment`; what they
// print is measured by the library (was/run/evaluation.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "was/run/evaluation.h"

namespace was::cli {

/// The terminal tables of a list of evaluate_run() results.
void print_evaluations(const nlohmann::json& runs);
/// One CSV row per run, mode and augmentation ("none" for the clean set).
void write_evaluations_csv(const nlohmann::json& runs, const std::string& path);

}  // namespace was::cli
