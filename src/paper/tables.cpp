#include "was/paper/tables.h"

namespace was::paper {

extern const char* const kPaperTablesJson;  // generated from data/paper-tables.json

namespace {

// Table 6's crop rows name the crop range; the released code's family crops by resizing.
std::string table6_variant(const Policy& p) {
  const auto range = [](double a, double b) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1f:%.1f", a, b);
    return std::string(text);
  };
  const bool translate = p.translate && p.translate->fx == 0.3 && p.translate->fy == 0.3 && p.translate->p == 1.0;
  std::optional<std::string> crop;
  if (p.crop && p.crop->p == 1.0) crop = range(p.crop->smin, p.crop->smax);
  if (p.rcrop && p.rcrop->p == 1.0) crop = range(p.rcrop->smin, p.rcrop->smax);
  if (p.rotate || p.granularity != Granularity::kLayer) return "";
  if (crop && translate) return "crop " + *crop + " + translate 0.3:0.3";
  if (crop && !p.translate) return "crop " + *crop;
  if (translate && !crop) return "translate 0.3:0.3";
  return "";
}

}  // namespace

const nlohmann::json& tables() {
  static const nlohmann::json parsed = nlohmann::json::parse(kPaperTablesJson);
  return parsed;
}

std::string model_name(const std::string& zoo_name) {
  for (const auto& [paper_name, zoo_names] : tables().at("models").items())
    for (const auto& z : zoo_names)
      if (z.get<std::string>() == zoo_name) return paper_name;
  return "";
}

std::optional<double> baseline_flops_m(const std::string& zoo_name) {
  const std::string name = model_name(zoo_name);
  for (const auto& row : tables().at("table2"))
    if (row.at("model") == name && row.at("variant") == "baseline") return row.at("flops_m").get<double>();
  return std::nullopt;
}

std::pair<double, double> released_crop_scale(const std::string& zoo_name) {
  const auto& scales = tables().at("released_crop_scale");
  const std::string name = model_name(zoo_name);
  const auto& s = scales.contains(name) ? scales.at(name) : scales.at("default");
  return {s.at(0).get<double>(), s.at(1).get<double>()};
}

std::string table2_variant(const Policy& p, const std::string& zoo_name) {
  if (p.empty()) return "baseline";
  if (!p.exclude.empty() || p.granularity != Granularity::kLayer || p.rotate) return "";
  Policy c = p.is_paper() ? Policy::paper_preset("C") : Policy::preset("C");
  Policy ct = p.is_paper() ? Policy::paper_preset("CT") : Policy::preset("CT");
  if (p.is_paper()) {  // the crop the released code uses on this model
    const auto [smin, smax] = released_crop_scale(zoo_name);
    c.rcrop->smin = ct.rcrop->smin = smin;
    c.rcrop->smax = ct.rcrop->smax = smax;
  }
  if (p == c) return "Model-C";
  if (p == ct) return "Model-CT";
  return "";
}

std::optional<double> top1(const std::string& zoo_name, const Policy& policy, const std::string& dataset,
                           const std::string& mode) {
  const std::string name = model_name(zoo_name);
  if (name.empty() || (dataset != "cifar10" && dataset != "cifar100")) return std::nullopt;
  const std::string key = dataset + "_" + mode;
  const std::string variant = table2_variant(policy, zoo_name);
  if (!variant.empty())
    for (const auto& row : tables().at("table2"))
      if (row.at("model") == name && row.at("variant") == variant && row.contains(key))
        return row.at(key).get<double>();
  const std::string v6 = policy.empty() ? "baseline" : table6_variant(policy);
  if (!v6.empty() && key == "cifar10_dom")
    for (const auto& row : tables().at("table6"))
      if (row.at("model") == name && row.at("variant") == v6) return row.at(key).get<double>();
  return std::nullopt;
}

}  // namespace was::paper
