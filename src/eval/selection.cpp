#include "was/eval/selection.h"

namespace was {

const std::vector<std::string>& evaluation_curves() {
  static const std::vector<std::string> curves = {"aom",       "dom",        "sdom",   "aom_paper",
                                                  "dom_paper", "sdom_paper", "aom_bn", "dom_bn"};
  return curves;
}

nlohmann::json EpochSelection::to_json() const {
  nlohmann::json j = {{"final", final_top1},
                      {"final_epoch", final_epoch},
                      {"best_test", best_test_top1},
                      {"best_test_epoch", best_test_epoch}};
  if (val_selected_top1) {
    j["val_selected"] = *val_selected_top1;
    j["val_selected_epoch"] = *val_selected_epoch;
    j["best_val"] = *best_val_top1;
  }
  return j;
}

std::optional<EpochSelection> select_epochs(const nlohmann::json& history, const std::string& curve) {
  const std::string test_key = "test_top1_" + curve, val_key = "val_top1_" + curve;
  std::optional<EpochSelection> s;
  for (const auto& e : history) {
    if (!e.contains(test_key) || !e[test_key].is_number()) continue;
    const double test = e[test_key].get<double>();
    const int64_t epoch = e.value("epoch", int64_t{0});
    if (!s) {
      s = EpochSelection{};
      s->best_test_top1 = test;
      s->best_test_epoch = epoch;
    }
    s->final_top1 = test;
    s->final_epoch = epoch;
    if (test > s->best_test_top1) {
      s->best_test_top1 = test;
      s->best_test_epoch = epoch;
    }
    if (e.contains(val_key) && e[val_key].is_number()) {
      const double val = e[val_key].get<double>();
      if (!s->best_val_top1 || val > *s->best_val_top1) {
        s->best_val_top1 = val;
        s->val_selected_top1 = test;
        s->val_selected_epoch = epoch;
      }
    }
  }
  return s;
}

nlohmann::json select_all_epochs(const nlohmann::json& history) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& curve : evaluation_curves())
    if (const auto s = select_epochs(history, curve)) out[curve] = s->to_json();
  return out;
}

}  // namespace was
