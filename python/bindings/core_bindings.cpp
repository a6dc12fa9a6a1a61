#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "was/core/error.h"
#include "was/core/runtime.h"
#include "was/nn/compact.h"
#include "was/nn/macs.h"
#include "was/shadow.h"
#include "was/transforms.h"

namespace py = pybind11;

namespace was::python {
namespace {

// Python integers may be negative; a seed or step must not wrap to 2^64 - k.
uint64_t non_negative(int64_t value, const char* what) {
  if (value < 0) throw Error(std::string(what) + " must be a non-negative integer, not " + std::to_string(value));
  return static_cast<uint64_t>(value);
}

StreamDomain stream_of(const std::string& name) {
  if (name == "training") return StreamDomain::kTrainingDraw;
  if (name == "dom") return StreamDomain::kDomDraw;
  if (name == "stochastic_dom") return StreamDomain::kStochasticDom;
  throw Error("unknown draw stream '" + name + "'", "streams are 'training', 'dom' and 'stochastic_dom'");
}

py::object window_tuple(const std::optional<CropWindow>& w) {
  if (!w) return py::none();
  return py::make_tuple(w->y0, w->x0, w->h, w->w);
}

std::optional<CropWindow> window_of(const std::optional<std::vector<int64_t>>& values, const char* what) {
  if (!values) return std::nullopt;
  if (values->size() != 4)
    throw Error(std::string(what) + " is (y0, x0, h, w): four integers, not " + std::to_string(values->size()));
  return CropWindow{(*values)[0], (*values)[1], (*values)[2], (*values)[3]};
}

// Everything a DOM or training weight depends on: one conv's geometry as Python holds it.
ConvGeometry conv_options(const torch::Tensor& weight, const std::vector<int64_t>& stride,
                          const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t groups,
                          bool bias) {
  if (weight.dim() != 4)
    throw Error("a convolution weight is [out, in/groups, kh, kw], not " + c10::str(weight.sizes()));
  const auto pair = [](const std::vector<int64_t>& v, const char* what) {
    if (v.size() != 2 || v[0] < 0 || v[1] < 0) throw Error(std::string(what) + " must be two non-negative integers");
    return torch::ExpandingArray<2>({v[0], v[1]});
  };
  if (groups < 1 || weight.size(0) % groups != 0)
    throw Error("groups must be a positive divisor of the output channels, not " + std::to_string(groups));
  return ConvGeometry(weight.size(1) * groups, weight.size(0), {weight.size(2), weight.size(3)})
      .stride(pair(stride, "stride"))
      .padding(pair(padding, "padding"))
      .dilation(pair(dilation, "dilation"))
      .groups(groups)
      .bias(bias);
}

// A Python convolution run compacted: the plan of its DOM weight, or the
// dense weight where nothing can be trimmed.
class CompactConv {
 public:
  CompactConv(torch::Tensor weight, std::optional<torch::Tensor> bias, const std::vector<int64_t>& stride,
              const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t groups)
      : options_(conv_options(weight, stride, padding, dilation, groups, bias.has_value())),
        weight_(weight.detach()),
        bias_(bias ? bias->detach() : torch::Tensor()) {
    plan_ = plan_compaction(options_, weight_, bias_, 8, &why_dense_);
  }
  torch::Tensor forward(const torch::Tensor& input) const {
    torch::NoGradGuard no_grad;
    if (input.dim() != 4 || input.size(1) != weight_.size(1) * options_.groups())
      throw Error("input of shape " + c10::str(input.sizes()) + " does not fit a convolution of " +
                  std::to_string(weight_.size(1) * options_.groups()) + " input channels");
    if (plan_) return run_compact(*plan_, options_, input);
    return torch::conv2d(input, weight_, bias_, *options_.stride(),
                         *c10::get<torch::ExpandingArray<2>>(options_.padding()), *options_.dilation(),
                         options_.groups());
  }
  bool compacted() const { return plan_.has_value(); }
  std::string describe() const {
    const std::string dense = std::to_string(weight_.size(2)) + "x" + std::to_string(weight_.size(3));
    return plan_ ? dense + " -> " + plan_->describe() : dense + " (" + why_dense_ + ")";
  }
  int64_t dense_taps() const { return weight_.size(0) * weight_.size(2) * weight_.size(3); }
  int64_t compact_taps() const { return plan_ ? plan_->compact_taps : dense_taps(); }
  void to_channels_last() {
    const auto cl = torch::MemoryFormat::ChannelsLast;
    weight_ = weight_.contiguous(cl);
    if (plan_)
      for (auto& part : plan_->parts) part.weight = part.weight.contiguous(cl);
  }

 private:
  ConvGeometry options_;
  torch::Tensor weight_, bias_;
  std::optional<CompactPlan> plan_;
  std::string why_dense_;
};

}  // namespace

void bind_core(py::module_& m) {
  // --- policies and modes ------------------------------------------------------
  py::class_<Policy>(m, "Policy")
      .def_static("parse", &Policy::parse, py::arg("text"))
      .def_static("preset", &Policy::preset, py::arg("name"))
      .def_static("paper_preset", &Policy::paper_preset, py::arg("name"))
      .def("validate", &Policy::validate)
      .def("to_string", &Policy::to_string)
      .def("__str__", &Policy::to_string)
      .def("__repr__", [](const Policy& p) { return "was.Policy.parse('" + p.to_string() + "')"; })
      .def("__eq__", [](const Policy& a, const Policy& b) { return a == b; })
      .def("__hash__", [](const Policy& p) { return std::hash<std::string>()(p.to_string()); })
      .def_property_readonly("empty", &Policy::empty)
      .def_property_readonly("is_paper", &Policy::is_paper)
      .def_property_readonly("gain", [](const Policy& p) { return p.gain; })
      .def_property_readonly("granularity",
                             [](const Policy& p) { return p.granularity == Granularity::kFilter ? "filter" : "layer"; })
      .def_property_readonly("exclude", [](const Policy& p) { return p.exclude; })
      .def(
          "excluding",
          [](const Policy& p, const std::vector<std::string>& names) {
            Policy out = p;
            for (const auto& n : names)
              if (std::find(out.exclude.begin(), out.exclude.end(), n) == out.exclude.end()) out.exclude.push_back(n);
            out.validate();
            return out;
          },
          py::arg("names"), "This policy, also leaving the named convolutions plain.");

  py::class_<Mode>(m, "Mode")
      .def_static("aom", &Mode::aom)
      .def_static(
          "dom",
          [](int64_t seed, const std::optional<Policy>& policy) {
            non_negative(seed, "DOM seed");
            return policy ? Mode::dom(seed, *policy) : Mode::dom(seed);
          },
          py::arg("seed") = 0, py::arg("policy") = py::none())
      .def_static("parse", &Mode::parse, py::arg("text"))
      .def_property_readonly("is_dom", &Mode::is_dom)
      .def_property_readonly("dom_seed",
                             [](const Mode& mode) { return mode.is_dom() ? py::cast(mode.dom_seed) : py::none(); })
      .def_property_readonly("policy", [](const Mode& mode) { return mode.policy; })
      .def("key", &Mode::key)
      .def("__str__", &Mode::key)
      .def("__repr__", [](const Mode& mode) { return "was.Mode.parse('" + mode.key() + "')"; })
      .def("__eq__", [](const Mode& a, const Mode& b) { return a == b; })
      .def("__hash__", [](const Mode& mode) { return std::hash<std::string>()(mode.key()); });

  // --- explicit transforms (was/transforms.h) --------------------------------------
  py::class_<TransformParams>(m, "TransformParams")
      .def(py::init([](const std::optional<std::vector<int64_t>>& crop,
                       const std::optional<std::vector<int64_t>>& resized_crop, int64_t dx, int64_t dy,
                       std::optional<double> angle, bool nearest) {
             TransformParams p;
             p.crop = window_of(crop, "crop");
             p.resized_crop = window_of(resized_crop, "resized_crop");
             p.dx = dx;
             p.dy = dy;
             p.angle_deg = angle;
             p.nearest = nearest;
             return p;
           }),
           py::arg("crop") = py::none(), py::arg("resized_crop") = py::none(), py::arg("dx") = 0, py::arg("dy") = 0,
           py::arg("angle") = py::none(), py::arg("nearest") = false)
      .def_property_readonly("crop", [](const TransformParams& p) { return window_tuple(p.crop); })
      .def_property_readonly("resized_crop", [](const TransformParams& p) { return window_tuple(p.resized_crop); })
      .def_readonly("dx", &TransformParams::dx)
      .def_readonly("dy", &TransformParams::dy)
      .def_readonly("angle", &TransformParams::angle_deg)
      .def_readonly("nearest", &TransformParams::nearest)
      .def("is_identity", &TransformParams::is_identity, py::arg("kh"), py::arg("kw"))
      .def("__repr__", [](const TransformParams& p) { return "was.transforms.Params(" + p.to_string() + ")"; });

  m.def("crop_matrix", [](int64_t kh, int64_t kw, const std::vector<int64_t>& window) {
    return crop_matrix(kh, kw, *window_of(window, "crop window"));
  });
  m.def("resized_crop_matrix", [](int64_t kh, int64_t kw, const std::vector<int64_t>& window) {
    return resized_crop_matrix(kh, kw, *window_of(window, "resized crop window"));
  });
  m.def("translate_matrix", &translate_matrix, py::arg("kh"), py::arg("kw"), py::arg("dx"), py::arg("dy"));
  m.def("rotate_matrix", &rotate_matrix, py::arg("kh"), py::arg("kw"), py::arg("angle"), py::arg("nearest") = false);
  m.def("transform_matrix", &transform_matrix, py::arg("params"), py::arg("kh"), py::arg("kw"));
  m.def("apply_transform", py::overload_cast<const torch::Tensor&, const TransformParams&>(&apply_transform),
        py::arg("weight"), py::arg("params"));
  m.def("apply_transform",
        py::overload_cast<const torch::Tensor&, const std::vector<TransformParams>&>(&apply_transform),
        py::arg("weight"), py::arg("params"));
  m.def("apply_plane_transform", &apply_plane_transform, py::arg("weight"), py::arg("matrix"));
  m.def(
      "draw_params",
      [](const Policy& policy, int64_t kh, int64_t kw, int64_t seed, const std::string& stream, int64_t layer,
         int64_t step, int64_t count) {
        policy.validate();
        if (kh < 1 || kw < 1) throw Error("kernel plane must be at least 1x1");
        if (count < 1) throw Error("count must be at least 1");
        CounterStream s(non_negative(seed, "seed"), stream_of(stream), non_negative(layer, "layer index"),
                        non_negative(step, "step"));
        std::vector<TransformParams> out;
        for (int64_t i = 0; i < count; ++i) out.push_back(draw_params(policy, kh, kw, s));
        return out;
      },
      py::arg("policy"), py::arg("kh"), py::arg("kw"), py::arg("seed"), py::arg("stream"), py::arg("layer"),
      py::arg("step"), py::arg("count") = 1);

  // --- one transformed convolution of a Python model ------------------------------
  py::class_<ShadowLayer>(m, "ShadowLayer")
      .def(py::init([](std::string name, int64_t index, torch::Tensor weight, std::optional<torch::Tensor> gain,
                       Policy policy) {
             non_negative(index, "layer index");
             policy.validate();
             return ShadowLayer(std::move(name), index, std::move(weight), gain ? *gain : torch::Tensor(),
                                std::move(policy));
           }),
           py::arg("name"), py::arg("index"), py::arg("weight"), py::arg("gain"), py::arg("policy"))
      .def_property_readonly("name", &ShadowLayer::name)
      .def_property_readonly("index", &ShadowLayer::index)
      .def_property_readonly("policy", &ShadowLayer::policy)
      .def_property_readonly("plain_weight", &ShadowLayer::plain_weight)
      .def_property_readonly("gain",
                             [](const ShadowLayer& l) { return l.gain().defined() ? py::cast(l.gain()) : py::none(); })
      .def(
          "draw",
          [](const ShadowLayer& l, int64_t seed, const std::string& stream, int64_t step) {
            return l.draw(non_negative(seed, "seed"), stream_of(stream), non_negative(step, "step"));
          },
          py::arg("seed"), py::arg("stream"), py::arg("step"))
      .def("shadow_weight", &ShadowLayer::shadow_weight, py::arg("params"))
      .def(
          "training_weight",
          [](const ShadowLayer& l, int64_t seed, int64_t step) {
            return l.training_weight(non_negative(seed, "seed"), non_negative(step, "step"));
          },
          py::arg("seed"), py::arg("step"))
      .def(
          "dom_weight",
          [](const ShadowLayer& l, int64_t seed, const std::optional<Policy>& policy) {
            non_negative(seed, "DOM seed");
            return policy ? l.dom_weight(seed, &*policy) : l.dom_weight(seed);
          },
          py::arg("seed"), py::arg("policy") = py::none())
      .def("weight_for", &ShadowLayer::weight_for, py::arg("mode"))
      .def("__repr__", [](const ShadowLayer& l) {
        return "<was layer " + std::to_string(l.index()) + " '" + l.name() + "' " + c10::str(l.plain_weight().sizes()) +
               " " + l.policy().to_string() + ">";
      });

  // --- measures and compaction ----------------------------------------------------
  py::class_<MacCount>(m, "MacCount")
      .def_readonly("conv", &MacCount::conv)
      .def_readonly("linear", &MacCount::linear)
      .def_property_readonly("total", &MacCount::total)
      .def_property_readonly("flops", [](const MacCount& c) { return 2 * c.total(); })
      .def_property_readonly("layers",
                             [](const MacCount& c) {
                               py::list out;
                               for (const auto& l : c.layers) {
                                 py::dict d;
                                 d["op"] = l.op;
                                 d["weight_shape"] = l.weight_shape;
                                 d["output_shape"] = l.output_shape;
                                 d["macs"] = l.macs;
                                 d["dense_macs"] = l.dense_macs;
                                 d["sparse_counted"] = l.sparse_counted;
                                 out.append(d);
                               }
                               return out;
                             })
      .def("__repr__", [](const MacCount& c) {
        return "<was MACs per image: " + std::to_string(c.total()) + " (conv " + std::to_string(c.conv) + ", linear " +
               std::to_string(c.linear) + ")>";
      });
  m.def(
      "count_macs",
      [](const py::function& forward, const std::vector<int64_t>& input_shape, const std::string& device,
         const std::vector<torch::Tensor>& sparse_weights) {
        if (input_shape.empty() || input_shape[0] != 1)
          throw Error("count_macs takes the shape of one image, batch 1 first");
        for (auto d : input_shape)
          if (d < 1) throw Error("input shape " + c10::str(input_shape) + " has an empty dimension");
        return count_macs(
            [&](torch::Tensor x) -> torch::Tensor {
              py::object out = forward(x);
              return py::isinstance<torch::Tensor>(out) ? out.cast<torch::Tensor>() : torch::Tensor();
            },
            input_shape, parse_device(device), sparse_weights);
      },
      py::arg("forward"), py::arg("input_shape"), py::arg("device"), py::arg("sparse_weights"));
  py::class_<Sparsity>(m, "Sparsity")
      .def_readonly("transformed_weights", &Sparsity::transformed_weights)
      .def_readonly("transformed_zeros", &Sparsity::transformed_zeros)
      .def_readonly("conv_weights", &Sparsity::conv_weights)
      .def_readonly("conv_zeros", &Sparsity::conv_zeros)
      .def_property_readonly("transformed_rate", &Sparsity::transformed_rate)
      .def_property_readonly("conv_rate", &Sparsity::conv_rate)
      .def("__repr__", [](const Sparsity& s) {
        return "<was sparsity: transformed " + std::to_string(s.transformed_rate()) + ", all convolutions " +
               std::to_string(s.conv_rate()) + ">";
      });
  m.def("sparsity_of", &sparsity_of, py::arg("transformed"), py::arg("plain"));

  py::class_<CompactConv>(m, "CompactConv")
      .def(py::init<torch::Tensor, std::optional<torch::Tensor>, const std::vector<int64_t>&,
                    const std::vector<int64_t>&, const std::vector<int64_t>&, int64_t>(),
           py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
           py::arg("groups"))
      .def("forward", &CompactConv::forward, py::arg("input"), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("compacted", &CompactConv::compacted)
      .def_property_readonly("dense_taps", &CompactConv::dense_taps)
      .def_property_readonly("compact_taps", &CompactConv::compact_taps)
      .def("describe", &CompactConv::describe)
      .def("to_channels_last", &CompactConv::to_channels_last);
}

}  // namespace was::python
