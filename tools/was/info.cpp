// `was info`: what a checkpoint holds.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "was/io/checkpoint.h"

namespace was::cli {
namespace {

void run_info(const std::string& arg, bool as_json) {
  const std::string path = resolve_checkpoint(arg);
  auto ckpt = load_checkpoint(path, torch::kCPU);
  const auto& s = ckpt.state;
  auto& net = *ckpt.network;
  int64_t params = 0;
  for (const auto& p : net.module().parameters()) params += p.numel();
  const auto aom = net.macs(Mode::aom());
  nlohmann::json j = s.to_json();
  j["version"] = kCheckpointVersion;
  j["parameters"] = params;
  j["aom_macs"] = aom.total();
  j["transformed_layers"] = net.shadow().layers().size();
  j["batchnorm_modes"] = net.batchnorm().keys();
  if (net.shadow().enabled()) j["dom_macs"] = net.macs(Mode::dom(s.dom_seed)).total();
  if (as_json) {
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::cout << "checkpoint    " << path << "\n"
            << "model         " << s.model.name << " (" << s.model.in_channels << "x" << s.model.image_size << "x"
            << s.model.image_size << " -> " << s.model.num_classes << " classes), " << params << " parameters\n"
            << "policy        " << s.policy << " (" << net.shadow().layers().size() << " transformed convolutions)\n"
            << "seed          " << s.seed << ", DOM seed " << s.dom_seed << "\n"
            << "dataset       " << s.dataset << "\n"
            << "progress      " << s.epoch << "/" << s.options.epochs << " epochs, " << s.step << " steps"
            << (s.finished ? ", finished" : ", resumable") << "\n"
            << "BN statistics";
  for (const auto& k : net.batchnorm().keys()) std::cout << " " << k;
  std::cout << "\nMACs          AOM " << aom.total();
  if (j.contains("dom_macs")) std::cout << ", DOM " << j["dom_macs"].get<int64_t>();
  std::cout << "\n";
  for (const auto& p : s.dom_profiles)
    std::printf("DOM profile   %s: %s, %s, validation top-1 %.2f%% (AOM %.2f%%), %.3f M MACs\n", p.name.c_str(),
                p.mode.c_str(), p.objective.c_str(), p.val_top1, p.aom_val_top1, double(p.macs) / 1e6);
  if (!s.results.empty()) std::cout << "results       " << s.results.to_json().dump() << "\n";
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("info", "show what a checkpoint holds: model, policy, seeds, progress, modes");
  cmd->add_option("checkpoint", *path, "checkpoint file or run directory")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([path, as_json] { run_info(*path, *as_json); });
}

}  // namespace was::cli
