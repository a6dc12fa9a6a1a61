#include "common.h"

#include <filesystem>

#include "was/error.h"
#include "was/runtime.h"

namespace was::cli {
namespace fs = std::filesystem;

void RuntimeOptions::add_to(CLI::App& app) {
  app.add_option("--threads", threads, "intra-op threads (0: all cores)")->capture_default_str();
  app.add_option("--device", device, "cpu, cuda or cuda:N (cuda needs a CUDA build of LibTorch)")
      ->capture_default_str();
}

torch::Device RuntimeOptions::apply() const {
  const auto dev = parse_device(device);
  set_threads(threads);
  return dev;
}

data::DatasetOptions dataset_options_of(const RunState& state) {
  data::DatasetOptions options;
  if (state.dataset == "imagefolder") options.image_size = state.model.image_size;
  if (state.dataset == "cifar100" && state.model.num_classes == data::kCifar100CoarseClasses)
    options.cifar100_labels = data::CifarLabels::kCoarse;
  return options;
}

namespace {
std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

void set_command_line(int argc, char** argv) { stored_command_line().assign(argv, argv + argc); }
const std::vector<std::string>& command_line() { return stored_command_line(); }

std::string resolve_checkpoint(const std::string& path) {
  if (fs::is_directory(path)) {
    const auto last = fs::path(path) / "last.pt";
    if (!fs::exists(last))
      throw Error("run directory '" + path + "' holds no last.pt", "pass a checkpoint file or a run directory");
    return last.string();
  }
  return path;
}

}  // namespace was::cli
