#include "was/record/selection.h"

#include "was/record/run_record.h"

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

EpochSelection EpochSelection::from_json(const nlohmann::json& j) {
  EpochSelection s;
  s.final_top1 = j.at("final").get<double>();
  s.final_epoch = j.at("final_epoch").get<int64_t>();
  s.best_test_top1 = j.at("best_test").get<double>();
  s.best_test_epoch = j.at("best_test_epoch").get<int64_t>();
  if (j.contains("val_selected")) {
    s.val_selected_top1 = j.at("val_selected").get<double>();
    s.val_selected_epoch = j.at("val_selected_epoch").get<int64_t>();
    s.best_val_top1 = j.at("best_val").get<double>();
  }
  return s;
}

std::optional<EpochSelection> select_epochs(const std::vector<EpochRecord>& history, const std::string& curve) {
  const std::string test_key = "test_top1_" + curve, val_key = "val_top1_" + curve;
  std::optional<EpochSelection> s;
  for (const auto& e : history) {
    const auto test_value = e.evaluation(test_key);
    if (!test_value) continue;
    const double test = *test_value;
    const int64_t epoch = e.epoch;
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
    if (const auto val_value = e.evaluation(val_key)) {
      const double val = *val_value;
      if (!s->best_val_top1 || val > *s->best_val_top1) {
        s->best_val_top1 = val;
        s->val_selected_top1 = test;
        s->val_selected_epoch = epoch;
      }
    }
  }
  return s;
}

std::map<std::string, EpochSelection> select_all_epochs(const std::vector<EpochRecord>& history) {
  std::map<std::string, EpochSelection> out;
  for (const auto& curve : evaluation_curves())
    if (const auto s = select_epochs(history, curve)) out[curve] = *s;
  return out;
}

nlohmann::json selections_json(const std::map<std::string, EpochSelection>& selections) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [curve, s] : selections) out[curve] = s.to_json();
  return out;
}

}  // namespace was
