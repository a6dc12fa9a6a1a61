#include "was/run/run_data.h"

#include <filesystem>

#include "was/core/error.h"
#include "was/train/trainer.h"

namespace was {
namespace fs = std::filesystem;

std::string resolve_checkpoint(const std::string& path) {
  if (fs::is_directory(path)) {
    const auto last = fs::path(path) / "last.pt";
    if (!fs::exists(last))
      throw NotFoundError("run directory '" + path + "' holds no last.pt", "pass a checkpoint file or a run directory");
    return last.string();
  }
  return path;
}

data::DatasetOptions dataset_options_of(const RunRecord& state) {
  data::DatasetOptions options;
  if (state.dataset == "imagefolder") options.image_size = state.model.image_size;
  if (state.dataset == "cifar100" && state.model.num_classes == data::kCifar100CoarseClasses)
    options.cifar100_labels = data::CifarLabels::kCoarse;
  return options;
}

data::Dataset training_images_of(const RunRecord& state, const std::string& data_dir) {
  auto split = data::load_dataset(state.dataset, data_dir, dataset_options_of(state));
  select_training_data(split, state.options);
  return split.train;
}

std::string ensure_mode_batchnorm(Checkpoint& ckpt, const Mode& mode, const data::Dataset& train, int64_t bn_batches,
                                  torch::Device device) {
  auto& net = *ckpt.network;
  if (net.batchnorm().has(mode.key())) return "per-mode";
  if (bn_batches <= 0 || net.batchnorm().num_layers() == 0) return "training";
  // A DOM seed never used before: estimate its statistics now, as training would have.
  reestimate_batchnorm_after_training(net, mode, train, ckpt.state.normalization, ckpt.state.seed, bn_batches, device,
                                      batchnorm_augmentation_of(ckpt.state));
  return "per-mode (estimated now)";
}

std::string ensure_mode_batchnorm(Checkpoint& ckpt, const Mode& mode, const std::string& data_dir, int64_t bn_batches,
                                  torch::Device device) {
  auto& net = *ckpt.network;
  if (net.batchnorm().has(mode.key()) || bn_batches <= 0 || net.batchnorm().num_layers() == 0)
    return ensure_mode_batchnorm(ckpt, mode, data::Dataset{}, bn_batches, device);
  return ensure_mode_batchnorm(ckpt, mode, training_images_of(ckpt.state, data_dir), bn_batches, device);
}

}  // namespace was
