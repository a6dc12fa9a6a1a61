// The paper's own figures (its Table 2 and Table 6, data/paper-tables.json),
// so that every measured result can be printed beside the one it reproduces.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "was/transforms.h"

namespace was::paper {

/// data/paper-tables.json, parsed (compiled into the library).
const nlohmann::json& tables();

/// The paper's name of a zoo model ("VGG-16" for vgg16 and vgg16_paper), or "".
std::string model_name(const std::string& zoo_name);
/// The paper's FLOPs column (M) of a zoo model's baseline, if it has one.
std::optional<double> baseline_flops_m(const std::string& zoo_name);

/// The resized crop's scale in the released code for a zoo model: (0.8, 1.0),
/// (0.6, 0.8) for GoogLeNet.
std::pair<double, double> released_crop_scale(const std::string& zoo_name);

/// The Table 2 variant a policy reproduces on a zoo model: "baseline" (none),
/// "Model-C" (C, or paper:C with the released crop scale of that model),
/// "Model-CT" (CT, paper:CT likewise); "" for any other policy.
std::string table2_variant(const Policy& policy, const std::string& zoo_name);

/// One figure of the paper: top-1 of `mode` ("aom" or "dom") of a zoo model
/// trained with `policy` on `dataset` ("cifar10", "cifar100"); Table 6 for the
/// VGG-16 CIFAR-10 DOM rows it has. nullopt where the paper has none.
std::optional<double> top1(const std::string& zoo_name, const Policy& policy, const std::string& dataset,
                           const std::string& mode);

}  // namespace was::paper
