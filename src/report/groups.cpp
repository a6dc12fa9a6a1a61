#include "groups.h"

#include <algorithm>

namespace was::report {

const Json* mode_of(const Json& eval, bool dom) {
  for (const auto& m : eval["modes"]) {
    const bool is_dom = m["key"].get<std::string>() != "aom";
    if (is_dom == dom) return &m;  // the first DOM entry is the run's primary seed
  }
  return nullptr;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::vector<Group> group_runs(const std::vector<ReportedRun>& runs) {
  std::vector<Group> groups;
  for (const auto& r : runs) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
      return g.dataset == r.dataset && g.model == r.model && g.label == r.label;
    });
    if (it == groups.end()) {
      groups.push_back({r.dataset, r.model, r.label, r.policy, {}});
      it = groups.end() - 1;
    }
    it->runs.push_back(&r);
  }
  return groups;
}

Stat collect(const Group& g, bool dom, const std::string& field) {
  Stat s;
  for (const auto* r : g.runs)
    if (const Json* m = mode_of(r->eval, dom)) s.v.push_back(m->value(field, NAN));
  return s;
}

Stat selected(const Group& g, const std::string& curve, const std::string& figure) {
  Stat s;
  for (const auto* r : g.runs) {
    const auto it = r->results.selection.find(curve);
    if (it == r->results.selection.end()) continue;
    const EpochSelection& sel = it->second;
    const std::optional<double> v = figure == "final"       ? std::optional(sel.final_top1)
                                    : figure == "best_test" ? std::optional(sel.best_test_top1)
                                                            : sel.val_selected_top1;
    if (v) s.v.push_back(*v);
  }
  return s;
}

std::string signed_fixed(double v, int digits) { return (v >= 0 ? "+" : "") + fixed(v, digits); }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace was::report
