// `was predict`: run an exported model on image files and print the top-k classes.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "was/core/error.h"
#include "was/core/speed_cache.h"
#include "was/data/image.h"
#include "was/io/export.h"

namespace was::cli {
namespace {

struct PredictArgs {
  std::string model;
  std::vector<std::string> images;
  std::string mode;
  int64_t top_k = 3;
  bool resize = false;
  bool no_compact = false;
  bool channels_last = false;
  bool nchw = false;
  RuntimeOptions runtime;
};

// uint8 [3, H, W] -> the model's channels and size.
torch::Tensor fit_image(torch::Tensor rgb, const std::string& path, const InferenceModel& m, bool resize) {
  const int64_t size = m.model.image_size;
  if (rgb.size(1) != size || rgb.size(2) != size) {
    if (!resize)
      throw Error("image '" + path + "' is " + std::to_string(rgb.size(2)) + "x" + std::to_string(rgb.size(1)) +
                      ", the model takes " + std::to_string(size) + "x" + std::to_string(size),
                  "pass --resize to resize it");
    rgb = data::resize_image(rgb, size, size);
  }
  if (m.model.in_channels == 1) {  // ITU-R 601 luma, as PIL's convert("L")
    const auto f = rgb.to(torch::kFloat32);
    return (f[0] * 0.299 + f[1] * 0.587 + f[2] * 0.114).round().clamp(0, 255).to(torch::kUInt8).unsqueeze(0);
  }
  if (m.model.in_channels != 3)
    throw Error("the model takes " + std::to_string(m.model.in_channels) +
                "-channel images; only 1 and 3 are supported");
  return rgb;
}

void run_predict(const PredictArgs& a) {
  const torch::Device device = a.runtime.apply();
  if (a.top_k < 1) throw Error("--top-k must be at least 1");
  std::optional<Mode> expect;
  if (!a.mode.empty()) expect = Mode::parse(a.mode);
  const auto warn = [](const std::string& m) { std::cerr << "warning: " << m << std::endl; };
  std::optional<InferenceModel> chosen;
  if (a.channels_last || a.nchw) {  // an explicit layout always wins
    chosen.emplace(load_inference(a.model, device, !a.no_compact, expect));
    if (a.channels_last) chosen->use_channels_last();
  } else {
    const SpeedCache cache;
    auto fastest = load_inference_fastest(a.model, device, !a.no_compact, expect, int64_t(a.images.size()),
                                          torch::get_num_threads(), &cache, warn);
    std::cerr << "layout: " << fastest.choice.describe() << std::endl;
    chosen.emplace(std::move(fastest.model));
  }
  auto& model = *chosen;
  std::vector<torch::Tensor> batch;
  for (const auto& path : a.images) batch.push_back(fit_image(data::read_image(path), path, model, a.resize));
  const auto probs = torch::softmax(model.predict(torch::stack(batch)), 1).cpu();
  const int64_t k = std::min<int64_t>(a.top_k, probs.size(1));
  const auto [values, indices] = probs.topk(k, 1);
  for (size_t i = 0; i < a.images.size(); ++i) {
    std::printf("%s:", a.images[i].c_str());
    for (int64_t j = 0; j < k; ++j) {
      const int64_t c = indices[i][j].item<int64_t>();
      const std::string name = c < int64_t(model.class_names.size()) ? model.class_names[c] : std::to_string(c);
      std::printf("%s %s %.3f", j ? "," : "", name.c_str(), values[i][j].item<double>());
    }
    std::printf("\n");
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  auto* cmd = app.add_subcommand("predict", "classify image files (JPEG, PNG) with a model from `was export`");
  cmd->add_option("model", args->model, "inference file written by `was export`")->required();
  cmd->add_option("images", args->images, "image files")->required();
  cmd->add_option("--mode", args->mode, "refuse a file that holds another mode (aom, dom:SEED)");
  cmd->add_option("--top-k", args->top_k, "classes to print per image")->capture_default_str();
  cmd->add_flag("--resize", args->resize, "resize images to the model's input size instead of refusing them");
  cmd->add_flag("--no-compact", args->no_compact, "run DOM convolutions dense (for comparison)");
  auto* cl = cmd->add_flag("--channels-last", args->channels_last,
                           "run NHWC (oneDNN's channels-last kernels; faster for depthwise convolutions); "
                           "without it or --nchw, the faster of the two as measured here (cached in "
                           "~/.cache/was/settings.json)");
  cmd->add_flag("--nchw", args->nchw, "run NCHW (no measurement)")->excludes(cl);
  args->runtime.add_to(*cmd);
  cmd->callback([args] { run_predict(*args); });
}

}  // namespace was::cli
