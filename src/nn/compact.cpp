#include "was/nn/compact.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>

#include "was/core/error.h"
#include "was/core/speed_cache.h"

namespace was {
namespace {

KernelWindow window_of_plane_mask(const torch::Tensor& mask) {  // bool [kh, kw]
  KernelWindow w;
  const auto rows = mask.any(1), cols = mask.any(0);
  const auto r = rows.nonzero(), c = cols.nonzero();
  if (r.numel() == 0 || c.numel() == 0) return w;
  w.r0 = r.min().item<int64_t>();
  w.r1 = r.max().item<int64_t>();
  w.c0 = c.min().item<int64_t>();
  w.c1 = c.max().item<int64_t>();
  return w;
}

ConvPart make_part(const ConvGeometry& o, const torch::Tensor& weight, const torch::Tensor& bias,
                   const KernelWindow& win, torch::Tensor filters) {
  const int64_t kh = weight.size(2), kw = weight.size(3);
  const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
  const int64_t ph = (*padding)[0], pw = (*padding)[1];
  const int64_t dh = (*o.dilation())[0], dw = (*o.dilation())[1];
  ConvPart part;
  part.window = win;
  part.filters = filters;
  auto w = filters.defined() ? weight.index_select(0, filters) : weight;
  part.weight = w.slice(2, win.r0, win.r1 + 1).slice(3, win.c0, win.c1 + 1).contiguous();
  if (bias.defined()) part.bias = filters.defined() ? bias.index_select(0, filters) : bias;
  // Rows the window skips at the top no longer need their padding; rows it
  // skips at the bottom likewise (WAS: an output offset, as a pad or crop).
  part.pad = {pw - win.c0 * dw, pw - (kw - 1 - win.c1) * dw, ph - win.r0 * dh, ph - (kh - 1 - win.r1) * dh};
  return part;
}

// One filter per input channel: a depthwise convolution.
bool is_depthwise(const ConvGeometry& o) {
  return o.groups() > 1 && o.groups() == o.in_channels() && o.out_channels() == o.in_channels();
}

}  // namespace

KernelWindow nonzero_window(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 4, "nonzero_window: weight must be [O, I, kh, kw]");
  return window_of_plane_mask(weight.ne(0).flatten(0, 1).any(0).cpu());
}

std::string CompactPlan::describe() const {
  std::ostringstream os;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    if (i) os << " + ";
    os << p.window.height() << "x" << p.window.width();
    if (parts.size() > 1) os << "(" << p.weight.size(0) << ")";
    if (p.dense_fallback) os << " (own kernel where faster, else the full kernel)";
  }
  return os.str();
}

std::optional<CompactPlan> plan_compaction(const ConvGeometry& o, const torch::Tensor& weight,
                                           const torch::Tensor& bias, int64_t max_parts, std::string* why_dense) {
  torch::NoGradGuard no_grad;
  const auto dense = [why_dense](const std::string& why) -> std::optional<CompactPlan> {
    if (why_dense != nullptr) *why_dense = why;
    return std::nullopt;
  };
  if (!c10::get_if<torch::enumtype::kZeros>(&o.padding_mode())) return dense("padding mode other than zeros");
  if (!c10::get_if<torch::ExpandingArray<2>>(&o.padding())) return dense("'same' or 'valid' padding");
  const int64_t out = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const auto w = weight.detach();
  CompactPlan plan;
  plan.dense_taps = out * kh * kw;

  const KernelWindow all = nonzero_window(w);
  if (all.empty()) return dense("all taps zero");  // keep it as it is
  // oneDNN's depthwise kernels are fast for 3x3 windows only: a 2x2 window
  // runs slower than the whole 3x3 kernel it came from (MobileNetV2 at batch
  // 128: 29 against 21 ms on 144 channels at 32x32). Depthwise layers are
  // compacted to 1x1 windows (run as a per-channel scale, run_compact) and to
  // 3x3 windows of larger kernels; other windows keep the dense kernel.
  if (is_depthwise(o) && all.height() * all.width() < kh * kw) {
    const bool one_by_one = all.height() == 1 && all.width() == 1;
    const bool three_by_three = all.height() == 3 && all.width() == 3;
    if (!one_by_one && !three_by_three) {
      // The own depthwise kernel may run the window faster: it is the one
      // candidate, the full kernel the other (run_compact measures them).
      const auto window = make_part(o, w, bias, all, torch::Tensor());
      std::string why_not;
      auto own = WindowConv::make(window.weight, window.bias, {(*o.stride())[0], (*o.stride())[1]},
                                  {(*o.dilation())[0], (*o.dilation())[1]}, window.pad, o.groups(), &why_not);
      if (!own)
        return dense("a depthwise " + std::to_string(all.height()) + "x" + std::to_string(all.width()) +
                     " window runs slower than the full kernel in oneDNN, and the own kernel cannot run it (" +
                     why_not + ")");
      auto full = make_part(o, w, bias, KernelWindow{0, kh - 1, 0, kw - 1}, torch::Tensor());
      full.window = all;
      full.own_kernel = std::move(own);
      full.dense_fallback = true;
      plan.parts.push_back(std::move(full));
      plan.compact_taps = all.height() * all.width() * out;
      return plan;
    }
  }
  // Per-filter windows, grouped by equal window.
  std::map<std::array<int64_t, 4>, std::vector<int64_t>> groups;
  if (o.groups() == 1 && max_parts > 1) {
    const auto masks = w.ne(0).any(1).cpu();  // [O, kh, kw]
    for (int64_t f = 0; f < out; ++f) {
      auto win = window_of_plane_mask(masks[f]);
      if (win.empty()) win = KernelWindow{0, 0, 0, 0};  // a dead filter: any 1x1 tap will do
      groups[{win.r0, win.r1, win.c0, win.c1}].push_back(f);
    }
  }
  // Too many distinct windows: keep the largest groups, merge the rest under
  // the union of their windows.
  std::vector<std::pair<KernelWindow, std::vector<int64_t>>> parts;
  for (const auto& [k, filters] : groups) parts.push_back({KernelWindow{k[0], k[1], k[2], k[3]}, filters});
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
  if (int64_t(parts.size()) > max_parts) {
    KernelWindow merged{1 << 30, -1, 1 << 30, -1};
    std::vector<int64_t> rest;
    for (size_t i = size_t(max_parts - 1); i < parts.size(); ++i) {
      const auto& w = parts[i].first;
      merged = {std::min(merged.r0, w.r0), std::max(merged.r1, w.r1), std::min(merged.c0, w.c0),
                std::max(merged.c1, w.c1)};
      rest.insert(rest.end(), parts[i].second.begin(), parts[i].second.end());
    }
    parts.resize(size_t(max_parts - 1));
    parts.push_back({merged, rest});
  }
  int64_t grouped_taps = 0;
  for (const auto& [win, filters] : parts) grouped_taps += win.height() * win.width() * int64_t(filters.size());
  const int64_t union_taps = all.height() * all.width() * out;

  if (parts.size() > 1 && grouped_taps < union_taps) {
    std::vector<int64_t> order;
    for (const auto& [win, filters] : parts) {
      auto idx = torch::tensor(filters, torch::kInt64).to(w.device());
      plan.parts.push_back(make_part(o, w, bias, win, idx));
      order.insert(order.end(), filters.begin(), filters.end());
      plan.compact_taps += win.height() * win.width() * int64_t(filters.size());
    }
    // Concatenated outputs are in `order`; restore the original filter order.
    plan.restore_order = torch::argsort(torch::tensor(order, torch::kInt64)).to(w.device());
  } else {
    if (union_taps == plan.dense_taps) return dense("no all-zero border taps");
    plan.parts.push_back(make_part(o, w, bias, all, torch::Tensor()));
    plan.compact_taps = union_taps;
    auto& part = plan.parts.front();
    part.own_kernel = WindowConv::make(part.weight, part.bias, {(*o.stride())[0], (*o.stride())[1]},
                                       {(*o.dilation())[0], (*o.dilation())[1]}, part.pad, o.groups());
  }
  return plan;
}

namespace {

// constant_pad_nd with pads of either sign, also where a crop reaches past the
// input (a window far from the centre on a tiny map, e.g. EfficientNet-Lite's
// 5x5 depthwise layers at 1x1): the zeros are added first, then the crop
// slices what remains, which constant_pad_nd refuses to do in one step.
torch::Tensor pad_or_crop(const torch::Tensor& input, int64_t left, int64_t right, int64_t top, int64_t bottom) {
  auto out = torch::constant_pad_nd(input,
                                    {std::max<int64_t>(left, 0), std::max<int64_t>(right, 0), std::max<int64_t>(top, 0),
                                     std::max<int64_t>(bottom, 0)},
                                    0);
  const int64_t crop_top = std::max<int64_t>(-top, 0), crop_bottom = std::max<int64_t>(-bottom, 0);
  const int64_t crop_left = std::max<int64_t>(-left, 0), crop_right = std::max<int64_t>(-right, 0);
  if (crop_top + crop_bottom > 0) out = out.slice(2, crop_top, out.size(2) - crop_bottom);
  if (crop_left + crop_right > 0) out = out.slice(3, crop_left, out.size(3) - crop_right);
  return out;
}

// One part with asymmetric (or negative, i.e. cropping) padding. Two ways to
// keep the output grid: pad a copy of the input (constant_pad_nd), or run the
// convolution with the larger padding on both sides and slice the extra
// output rows and columns away (no copy, a little more arithmetic). Slicing
// wins on large maps, where the copy is expensive and the extra border cheap.
torch::Tensor run_asymmetric_part(const ConvPart& part, const ConvGeometry& o, const torch::Tensor& input) {
  const int64_t sh = (*o.stride())[0], sw = (*o.stride())[1];
  const int64_t left = part.pad[0], right = part.pad[1], top = part.pad[2], bottom = part.pad[3];
  const int64_t ph = std::max<int64_t>({top, bottom, 0}), pw = std::max<int64_t>({left, right, 0});
  const int64_t h = input.size(2), w = input.size(3);
  const int64_t eh = (*o.dilation())[0] * (part.weight.size(2) - 1) + 1,
                ew = (*o.dilation())[1] * (part.weight.size(3) - 1) + 1;
  const int64_t out_h = (h + top + bottom - eh) / sh + 1, out_w = (w + left + right - ew) / sw + 1;
  const int64_t full_h = (h + 2 * ph - eh) / sh + 1, full_w = (w + 2 * pw - ew) / sw + 1;
  const bool aligned = (ph - top) % sh == 0 && (pw - left) % sw == 0;
  constexpr double kMaxExtra = 0.15;  // extra output computed, against a copy of the input
  // oneDNN's fast 1x1 kernel takes no padding: a padded 1x1 convolution runs a
  // generic kernel, slower than the copy (ResNet-18 batch 128, 64 channels at
  // 32x32: 18 ms sliced, see docs/INFERENCE.md).
  const bool one_by_one = part.weight.size(2) == 1 && part.weight.size(3) == 1;
  if (!one_by_one && aligned && out_h > 0 && out_w > 0 &&
      double(full_h * full_w) <= (1.0 + kMaxExtra) * double(out_h * out_w)) {
    const int64_t r0 = (ph - top) / sh, c0 = (pw - left) / sw;
    const auto full = torch::conv2d(input, part.weight, part.bias, *o.stride(), torch::IntArrayRef{ph, pw},
                                    *o.dilation(), o.groups());
    return full.slice(2, r0, r0 + out_h).slice(3, c0, c0 + out_w);
  }
  const auto padded = pad_or_crop(input, left, right, top, bottom);
  return torch::conv2d(padded, part.weight, part.bias, *o.stride(), torch::IntArrayRef{0, 0}, *o.dilation(),
                       o.groups());
}

// A 1x1 window of a depthwise convolution is a per-channel scale of the
// shifted input. oneDNN has no fast kernel for it (MobileNetV2 at batch 128: 34
// ms for one 960-channel 4x4 layer whose 3x3 kernel takes 1.5 ms), so it runs
// as a pad (the shift) and one multiply-add. Recorded under its own name so
// the MACs counter counts it as the convolution it is.
torch::Tensor run_depthwise_1x1(const ConvPart& part, const ConvGeometry& o, const torch::Tensor& input) {
  RECORD_FUNCTION("was::depthwise_conv1x1", std::vector<c10::IValue>{input, part.weight});  // declares `guard`
  const auto& stride = *o.stride();
  auto shifted = pad_or_crop(input, part.pad[0], part.pad[1], part.pad[2], part.pad[3]);
  if (stride[0] > 1 || stride[1] > 1)
    shifted = shifted.slice(2, 0, c10::nullopt, stride[0]).slice(3, 0, c10::nullopt, stride[1]);
  const auto scale = part.weight.view({1, -1, 1, 1});
  auto out = part.bias.defined() ? torch::addcmul(part.bias.view({1, -1, 1, 1}), shifted, scale) : shifted * scale;
  if (guard.isActive() && guard.needsOutputs()) guard.setOutputs(std::vector<c10::IValue>{out});
  return out;
}

torch::Tensor run_parts_onednn(const CompactPlan& plan, const ConvGeometry& o, const torch::Tensor& input) {
  std::vector<torch::Tensor> outputs;
  outputs.reserve(plan.parts.size());
  for (const auto& part : plan.parts) {
    const bool symmetric =
        part.pad[0] == part.pad[1] && part.pad[2] == part.pad[3] && part.pad[0] >= 0 && part.pad[2] >= 0;
    if (symmetric) {  // the convolution pads by itself, no copy
      outputs.push_back(torch::conv2d(input, part.weight, part.bias, *o.stride(),
                                      torch::IntArrayRef{part.pad[2], part.pad[0]}, *o.dilation(), o.groups()));
    } else {
      outputs.push_back(run_asymmetric_part(part, o, input));
    }
  }
  if (outputs.size() == 1) return outputs.front();
  return torch::cat(outputs, 1).index_select(1, plan.restore_order);
}

std::vector<int64_t> shape_key(const std::vector<int64_t>& input_sizes) {
  auto key = input_sizes;
  key.push_back(at::get_num_threads());
  return key;
}

// Times oneDNN against the own kernel on this very input, in turns (the
// machine's speed drifts), one warm-up each and then three rounds; the faster
// total wins. Unrecorded, so a MACs count in progress sees one forward only.
bool own_kernel_measures_faster(const CompactPlan& plan, const ConvGeometry& o, const torch::Tensor& input) {
  at::DisableRecordFunctionGuard unrecorded;
  const auto& own = *plan.parts.front().own_kernel;
  const auto seconds = time_in_turns({[&] { run_parts_onednn(plan, o, input); }, [&] { own(input); }}, 3);
  const auto total = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); };
  return total(seconds[1]) < total(seconds[0]);
}

bool use_own_kernel(const CompactPlan& plan, const ConvGeometry& o, const torch::Tensor& input) {
  switch (window_kernel_choice()) {
    case WindowKernelChoice::own:
      return true;
    case WindowKernelChoice::onednn:
      return false;
    case WindowKernelChoice::automatic:
      break;
  }
  const auto key = shape_key(input.sizes().vec());
  std::lock_guard<std::mutex> lock(plan.measured->mutex);
  auto found = plan.measured->own_is_faster.find(key);
  if (found == plan.measured->own_is_faster.end())
    found = plan.measured->own_is_faster.emplace(key, own_kernel_measures_faster(plan, o, input)).first;
  return found->second;
}

}  // namespace

std::string CompactPlan::kernel_for(const std::vector<int64_t>& input_sizes) const {
  std::lock_guard<std::mutex> lock(measured->mutex);
  const auto found = measured->own_is_faster.find(shape_key(input_sizes));
  if (found == measured->own_is_faster.end()) return "not measured";
  return found->second ? "own" : "onednn";
}

torch::Tensor run_compact(const CompactPlan& plan, const ConvGeometry& o, const torch::Tensor& input) {
  if (is_depthwise(o) && plan.parts.size() == 1 && plan.parts[0].weight.size(2) == 1 &&
      plan.parts[0].weight.size(3) == 1)
    return run_depthwise_1x1(plan.parts[0], o, input);
  if (plan.parts.size() == 1 && plan.parts[0].own_kernel && plan.parts[0].own_kernel->accepts(input) &&
      use_own_kernel(plan, o, input))
    return (*plan.parts[0].own_kernel)(input);
  return run_parts_onednn(plan, o, input);
}

}  // namespace was

namespace was {

std::optional<CompactPlan> plan_compaction(const torch::nn::Conv2dImpl& conv, const torch::Tensor& weight,
                                           const torch::Tensor& bias, int64_t max_parts, std::string* why_dense) {
  return plan_compaction(conv.options, weight, bias, max_parts, why_dense);
}

torch::Tensor run_compact(const CompactPlan& plan, const torch::nn::Conv2dImpl& conv, const torch::Tensor& input) {
  return run_compact(plan, conv.options, input);
}

}  // namespace was
