// `was experiment CONFIG`: a grid of runs (models x policies x datasets x
// seeds) described in a JSON file, one run directory per cell, resumable.
#pragma once

#include <CLI/CLI.hpp>

namespace was::cli {

void add_experiment_command(CLI::App& app);

}  // namespace was::cli
