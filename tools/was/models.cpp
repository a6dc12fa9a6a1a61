// `was models`: the zoo, with parameters, MACs, what WAS transforms, and the
// paper's FLOPs column beside each model that has one.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "was/eval/model_summary.h"
#include "was/models/classifier.h"

namespace was::cli {
namespace {

struct ModelsArgs {
  int64_t num_classes = 10;
  int64_t image_size = 32;
  bool json = false;
  bool layers = false;
};

nlohmann::json to_json(const ModelSummary& s) {
  nlohmann::json j = {{"name", s.name},
                      {"parameters", s.parameters},
                      {"aom_macs", s.aom_macs},
                      {"convolutions", s.convolutions},
                      {"transformable", s.transformable}};
  if (s.released) j["paper_transformed"] = *s.released;
  if (!s.paper_name.empty()) j["paper_name"] = s.paper_name;
  if (s.paper_flops_m) {
    j["paper_flops_m"] = *s.paper_flops_m;
    j["macs_over_paper"] = double(s.aom_macs) / (*s.paper_flops_m * 1e6);
  }
  return j;
}

void run_models(const ModelsArgs& a) {
  if (a.num_classes < 1 || a.image_size < 1)
    throw Error("--classes and --image-size must be positive", "e.g. --classes 10 --image-size 32");
  nlohmann::json all = nlohmann::json::array();
  if (!a.json)
    std::printf("%-26s %12s %14s %7s %13s %-18s %10s %9s\n", "model", "parameters", "AOM MACs", "convs", "transformed",
                "paper model", "paper (M)", "MACs/paper");
  for (const auto& name : models::model_names()) {
    torch::manual_seed(0);
    const auto s = summarize_model({name, a.num_classes, 3, a.image_size});
    all.push_back(to_json(s));
    if (a.json) continue;
    const std::string transformed =
        s.released ? std::to_string(s.released->size()) + " (paper)" : std::to_string(s.transformable.size());
    const std::string paper_m = s.paper_flops_m ? std::to_string(*s.paper_flops_m).substr(0, 6) : "-";
    const std::string ratio =
        s.paper_flops_m ? std::to_string(double(s.aom_macs) / (*s.paper_flops_m * 1e6)).substr(0, 5) : "-";
    std::printf("%-26s %12lld %14lld %7lld %13s %-18s %10s %9s\n", s.name.c_str(), (long long)s.parameters,
                (long long)s.aom_macs, (long long)s.convolutions, transformed.c_str(),
                s.paper_name.empty() ? "-" : s.paper_name.c_str(), paper_m.c_str(), ratio.c_str());
    if (a.layers) {
      const auto& names = s.released ? *s.released : s.transformable;
      for (const auto& layer : names) std::printf("    %s\n", layer.c_str());
    }
  }
  if (a.json) std::cout << all.dump(2) << std::endl;
}

}  // namespace

void add_models_command(CLI::App& app) {
  auto args = std::make_shared<ModelsArgs>();
  auto* cmd = app.add_subcommand(
      "models", "list the model zoo: parameters, AOM MACs, transformed layers, the paper's FLOPs beside them");
  cmd->add_option("--classes", args->num_classes, "number of classes the MACs are counted for")->capture_default_str();
  cmd->add_option("--image-size", args->image_size, "input height = width")->capture_default_str();
  cmd->add_flag("--layers", args->layers,
                "list the transformed convolutions by name (the released code's for _paper models)");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args] { run_models(*args); });
}

}  // namespace was::cli
