// Test helper for tests/python/: applies was's transforms to one-hot planes
// and draws parameters, so that Python can compare them with torchvision.
//
//   was_transform_probe CASES.json   ->   JSON on stdout, one answer per case
//
// Cases: {"kind": "rcrop", "kh", "kw", "window": [y0, x0, h, w]},
// {"kind": "rotate", "kh", "kw", "angle", "nearest"}, {"kind": "translate",
// "kh", "kw", "dx", "dy"}: the [kk, kh, kw] images of the kk one-hot planes
// through was::apply_transform (the library's CPU pass). {"kind":
// "rcrop_draws", "kh", "kw", "policy", "n"}: how often each window
// "y0,x0,h,w" is drawn in n draws of the policy's resized crop.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "was/core/rng.h"
#include "was/transforms.h"

namespace {

nlohmann::json images_of_one_hot_planes(const was::TransformParams& params, int64_t kh, int64_t kw) {
  const int64_t kk = kh * kw;
  const auto basis = torch::eye(kk, torch::kFloat).reshape({kk, 1, kh, kw});
  const auto out = was::apply_transform(basis, params).reshape({kk, kh, kw}).contiguous();
  std::vector<float> values(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
  return values;
}

nlohmann::json answer(const nlohmann::json& c) {
  const std::string kind = c.at("kind");
  const int64_t kh = c.at("kh"), kw = c.at("kw");
  was::TransformParams p;
  if (kind == "rcrop") {
    const auto w = c.at("window").get<std::vector<int64_t>>();
    p.resized_crop = was::CropWindow{w.at(0), w.at(1), w.at(2), w.at(3)};
    return images_of_one_hot_planes(p, kh, kw);
  }
  if (kind == "rotate") {
    p.angle_deg = c.at("angle").get<double>();
    p.nearest = c.value("nearest", true);
    return images_of_one_hot_planes(p, kh, kw);
  }
  if (kind == "translate") {
    p.dx = c.at("dx");
    p.dy = c.at("dy");
    return images_of_one_hot_planes(p, kh, kw);
  }
  if (kind == "rcrop_draws") {
    const auto policy = was::Policy::parse(c.at("policy").get<std::string>());
    std::map<std::string, int64_t> counts;
    const int64_t n = c.at("n");
    for (int64_t i = 0; i < n; ++i) {
      was::CounterStream stream(7, was::StreamDomain::kTrainingDraw, 0, static_cast<uint64_t>(i));
      const auto d = was::draw_params(policy, kh, kw, stream);
      const auto& win = d.resized_crop;
      const std::string key = win ? std::to_string(win->y0) + "," + std::to_string(win->x0) + "," +
                                        std::to_string(win->h) + "," + std::to_string(win->w)
                                  : "none";
      ++counts[key];
    }
    return counts;
  }
  throw std::runtime_error("unknown case kind '" + kind + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: was_transform_probe CASES.json\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1]);
    const auto cases = nlohmann::json::parse(in);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : cases) out.push_back(answer(c));
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
