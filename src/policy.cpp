#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "was/core/error.h"
#include "was/policy.h"

namespace was {
namespace {

// Shortest text that reads back as the same double.
std::string format_number(double v) {
  for (int precision : {6, 10, 15, 17}) {
    std::ostringstream os;
    os.precision(precision);
    os << v;
    if (std::strtod(os.str().c_str(), nullptr) == v) return os.str();
  }
  return std::to_string(v);
}

double parse_number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw Error("policy: '" + text + "' is not a number (in " + what + ")",
                "write numbers like 0.8, e.g. crop=0.8:1.0");
  return v;
}

std::pair<double, double> parse_range(const std::string& text, const std::string& what) {
  const auto colon = text.find(':');
  if (colon == std::string::npos)
    throw Error("policy: " + what + " needs a range LOW:HIGH, got '" + text + "'",
                "e.g. crop=0.8:1.0, translate=0.3:0.3, rotate=0:90");
  return {parse_number(text.substr(0, colon), what), parse_number(text.substr(colon + 1), what)};
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream is(text);
  while (std::getline(is, cur, sep)) parts.push_back(cur);
  return parts;
}

void check_probability(double p, const std::string& what) {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error("policy: probability of " + what + " must be in [0, 1], got " + format_number(p),
                "e.g. crop=0.8:1.0@p=0.5");
}

}  // namespace

// --- Policy ------------------------------------------------------------------

void Policy::validate() const {
  if (crop && is_paper())
    throw Error("policy: the paper family crops by resizing, it has no crop=",
                "write paper:rcrop=SMIN:SMAX (torchvision's RandomResizedCrop), e.g. paper:rcrop=0.8:1.0");
  if (rcrop && !is_paper())
    throw Error("policy: rcrop (the released code's resized crop) belongs to the paper family",
                "write paper:rcrop=" + format_number(rcrop->smin) + ":" + format_number(rcrop->smax));
  if (gain && !is_paper())
    throw Error("policy: the learnable gain belongs to the paper family", "write paper:... (e.g. paper:CT)");
  if (rcrop) {
    if (!(rcrop->smin > 0.0 && rcrop->smin <= rcrop->smax && rcrop->smax <= 1.0))
      throw Error("policy: rcrop area fraction must satisfy 0 < smin <= smax <= 1, got rcrop=" +
                      format_number(rcrop->smin) + ":" + format_number(rcrop->smax),
                  "a fraction of the plane's area, in (0, 1], e.g. paper:rcrop=0.8:1.0");
    check_probability(rcrop->p, "rcrop");
  }
  if (crop) {
    if (!(crop->smin > 0.0 && crop->smin <= crop->smax && crop->smax <= 1.0))
      throw Error("policy: crop ratio must satisfy 0 < smin <= smax <= 1, got crop=" + format_number(crop->smin) + ":" +
                      format_number(crop->smax),
                  "a ratio is the kept fraction of each kernel side, e.g. crop=0.8:1.0");
    check_probability(crop->p, "crop");
  }
  if (translate) {
    if (!(translate->fx >= 0.0 && translate->fx <= 1.0 && translate->fy >= 0.0 && translate->fy <= 1.0))
      throw Error("policy: translate fractions must be in [0, 1], got translate=" + format_number(translate->fx) + ":" +
                      format_number(translate->fy),
                  "a fraction of the kernel side, e.g. translate=0.3:0.3");
    check_probability(translate->p, "translate");
  }
  if (rotate) {
    if (!(std::isfinite(rotate->amin) && std::isfinite(rotate->amax) && rotate->amin <= rotate->amax))
      throw Error("policy: rotate needs amin <= amax (degrees), got rotate=" + format_number(rotate->amin) + ":" +
                      format_number(rotate->amax),
                  "e.g. rotate=0:90");
    check_probability(rotate->p, "rotate");
  }
}

std::string Policy::to_string() const {
  std::vector<std::string> parts;
  auto with_p = [](std::string s, double p) { return p == 1.0 ? s : s + "@p=" + format_number(p); };
  if (crop) parts.push_back(with_p("crop=" + format_number(crop->smin) + ":" + format_number(crop->smax), crop->p));
  if (rcrop)
    parts.push_back(with_p("rcrop=" + format_number(rcrop->smin) + ":" + format_number(rcrop->smax), rcrop->p));
  if (translate)
    parts.push_back(
        with_p("translate=" + format_number(translate->fx) + ":" + format_number(translate->fy), translate->p));
  if (rotate)
    parts.push_back(with_p("rotate=" + format_number(rotate->amin) + ":" + format_number(rotate->amax), rotate->p));
  if (parts.empty()) return "none";
  if (granularity == Granularity::kFilter) parts.push_back("granularity=filter");
  if (!exclude.empty()) {
    std::string ex = "exclude=";
    for (size_t i = 0; i < exclude.size(); ++i) ex += (i ? ":" : "") + exclude[i];
    parts.push_back(ex);
  }
  if (is_paper() && !gain) parts.push_back("gain=off");
  std::string out = is_paper() ? "paper:" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
  return out;
}

Policy Policy::preset(const std::string& name_in) {
  std::string name = name_in;
  if (!name.empty() && name[0] == '-') name = name.substr(1);
  std::string upper;
  for (char ch : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Policy p;
  if (upper == "NONE" || upper == "BASELINE") return p;
  if (upper.empty() || upper.find_first_not_of("CTR") != std::string::npos)
    throw Error("policy: unknown preset '" + name_in + "'",
                "presets are C, T, R, CT, CTR (or none); or give transforms, e.g. crop=0.8:1.0,translate=0.3:0.3");
  for (char ch : upper) {
    if (ch == 'C') p.crop = CropRange{0.8, 1.0, 1.0};
    if (ch == 'T') p.translate = TranslateRange{0.3, 0.3, 1.0};
    if (ch == 'R') p.rotate = RotateRange{0.0, 90.0, 1.0};
  }
  return p;
}

Policy Policy::paper_preset(const std::string& name_in) {
  std::string upper;
  for (char ch : name_in) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  Policy p;
  p.family = Family::kPaper;
  p.gain = true;
  if (upper == "NONE" || upper == "BASELINE") return Policy{};
  if (upper.empty() || upper.find_first_not_of("CTR") != std::string::npos)
    throw Error("policy: unknown paper preset 'paper:" + name_in + "'",
                "paper presets are paper:C, paper:T, paper:R, paper:CT, paper:CTR; or transforms, e.g. "
                "paper:rcrop=0.6:0.8,translate=0.3:0.3");
  // The released code's ranges: RandomResizedCrop(scale=(0.8, 1.0)),
  // RandomAffine(translate=(0.3, 0.3)), RandomRotation(90) = (-90, 90).
  for (char ch : upper) {
    if (ch == 'C') p.rcrop = ResizedCropRange{0.8, 1.0, 1.0};
    if (ch == 'T') p.translate = TranslateRange{0.3, 0.3, 1.0};
    if (ch == 'R') p.rotate = RotateRange{-90.0, 90.0, 1.0};
  }
  return p;
}

Policy Policy::parse(const std::string& text_in) {
  Policy policy;
  if (text_in.empty()) throw Error("policy: empty --was value", "use none, a preset (C, T, R, CT, CTR) or transforms");
  std::string text = text_in;
  const bool paper = text.rfind("paper:", 0) == 0;
  if (paper) {
    text = text.substr(6);
    policy.family = Family::kPaper;
    policy.gain = true;
    if (text.empty())
      throw Error("policy: 'paper:' needs a preset or transforms", "e.g. paper:CT or paper:rcrop=0.8:1.0");
  }
  for (const std::string& token : split(text, ',')) {
    if (token.empty()) continue;
    // A trailing @p=X sets the probability of the transform(s) of this token.
    std::string body = token;
    std::optional<double> prob;
    if (const auto at = token.find('@'); at != std::string::npos) {
      body = token.substr(0, at);
      const std::string suffix = token.substr(at + 1);
      if (suffix.rfind("p=", 0) != 0)
        throw Error("policy: unknown modifier '@" + suffix + "'", "the only modifier is @p=PROBABILITY");
      prob = parse_number(suffix.substr(2), "probability");
    }
    const auto eq = body.find('=');
    if (eq == std::string::npos) {  // a preset
      const Policy preset = paper ? Policy::paper_preset(body) : Policy::preset(body);
      if (preset.crop) policy.crop = preset.crop;
      if (preset.rcrop) policy.rcrop = preset.rcrop;
      if (preset.translate) policy.translate = preset.translate;
      if (preset.rotate) policy.rotate = preset.rotate;
      if (prob) {
        if (preset.crop) policy.crop->p = *prob;
        if (preset.rcrop) policy.rcrop->p = *prob;
        if (preset.translate) policy.translate->p = *prob;
        if (preset.rotate) policy.rotate->p = *prob;
      }
      continue;
    }
    const std::string key = body.substr(0, eq), value = body.substr(eq + 1);
    if (key == "crop") {
      auto [a, b] = parse_range(value, "crop");
      policy.crop = CropRange{a, b, prob.value_or(1.0)};
    } else if (key == "rcrop") {
      auto [a, b] = parse_range(value, "rcrop");
      policy.rcrop = ResizedCropRange{a, b, prob.value_or(1.0)};
    } else if (key == "gain" && paper) {
      if (value == "on")
        policy.gain = true;
      else if (value == "off")
        policy.gain = false;
      else
        throw Error("policy: gain must be on or off, got '" + value + "'");
    } else if (key == "translate") {
      auto [a, b] = parse_range(value, "translate");
      policy.translate = TranslateRange{a, b, prob.value_or(1.0)};
    } else if (key == "rotate") {
      auto [a, b] = parse_range(value, "rotate");
      policy.rotate = RotateRange{a, b, prob.value_or(1.0)};
    } else if (key == "granularity") {
      if (value == "layer")
        policy.granularity = Granularity::kLayer;
      else if (value == "filter")
        policy.granularity = Granularity::kFilter;
      else
        throw Error("policy: granularity must be layer or filter, got '" + value + "'");
    } else if (key == "exclude") {
      for (auto& name : split(value, ':'))
        if (!name.empty()) policy.exclude.push_back(name);
    } else {
      throw Error("policy: unknown key '" + key + "' in '" + token + "'",
                  paper ? "paper keys are rcrop, translate, rotate, granularity, exclude, gain; presets C, T, R, CT"
                        : "keys are crop, translate, rotate, granularity, exclude; presets C, T, R, CT, CTR; "
                          "paper:... for the released code's family");
    }
  }
  policy.validate();
  return policy;
}

bool operator==(const Policy& a, const Policy& b) { return a.to_string() == b.to_string(); }

}  // namespace was
