#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <filesystem>

#include "bindings.h"
#include "was/core/error.h"
#include "was/core/runtime.h"
#include "was/data/datasets.h"
#include "was/io/checkpoint.h"
#include "was/io/export.h"
#include "was/network.h"
#include "was/run/run_data.h"

namespace py = pybind11;

namespace was::python {
namespace {

// A zoo network and the run record that goes with it: what a checkpoint holds
// (without the optimiser state, which belongs to the Python optimiser).
struct Run {
  std::shared_ptr<Network> network;
  RunRecord record;
};

Run load_run(const std::string& path, const std::string& device) {
  const torch::Device dev = parse_device(device);
  Checkpoint checkpoint = load_checkpoint(resolve_checkpoint(path), dev);
  return Run{std::shared_ptr<Network>(std::move(checkpoint.network)), std::move(checkpoint.state)};
}

Run create_run(const std::string& name, int64_t num_classes, int64_t in_channels, int64_t image_size,
               const Policy& policy, int64_t seed, const std::vector<double>& mean, const std::vector<double>& std) {
  if (num_classes < 1 || in_channels < 1 || image_size < 1)
    throw Error("num_classes, in_channels and image_size must be positive");
  if (seed < 0) throw Error("seed must be a non-negative integer, not " + std::to_string(seed));
  if (mean.size() != std.size() || (!mean.empty() && int64_t(mean.size()) != in_channels))
    throw Error("the normalisation needs one mean and one std per input channel (" + std::to_string(in_channels) + ")");
  Run run;
  run.record.model = {name, num_classes, in_channels, image_size};
  run.record.policy = policy.to_string();
  run.record.seed = static_cast<uint64_t>(seed);
  run.record.normalization = {mean, std};
  run.network = std::make_shared<Network>(run.record.model, policy, run.record.seed);
  return run;
}

std::vector<std::pair<std::string, torch::Tensor>> items(const torch::OrderedDict<std::string, torch::Tensor>& dict) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : dict) out.emplace_back(item.key(), item.value());
  return out;
}

void bind_inference(py::module_& m) {
  py::class_<InferenceModel>(m, "InferenceModel")
      .def_property_readonly("model_name", [](const InferenceModel& im) { return im.model.name; })
      .def_property_readonly("num_classes", [](const InferenceModel& im) { return im.model.num_classes; })
      .def_property_readonly("in_channels", [](const InferenceModel& im) { return im.model.in_channels; })
      .def_property_readonly("image_size", [](const InferenceModel& im) { return im.model.image_size; })
      .def_readonly("mode", &InferenceModel::mode)
      .def_readonly("policy", &InferenceModel::policy)
      .def_property_readonly("mean", [](const InferenceModel& im) { return im.normalization.mean; })
      .def_property_readonly("std", [](const InferenceModel& im) { return im.normalization.std; })
      .def_readonly("class_names", &InferenceModel::class_names)
      .def_readonly("folded", &InferenceModel::folded)
      .def_readonly("compacted", &InferenceModel::compacted)
      .def_readonly("dense", &InferenceModel::dense)
      .def_readonly("channels_last", &InferenceModel::channels_last)
      .def("use_channels_last", &InferenceModel::use_channels_last)
      .def(
          "forward",
          [](InferenceModel& im, const torch::Tensor& x) {
            torch::NoGradGuard no_grad;
            return im.net->forward(im.channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x);
          },
          py::arg("x"), py::call_guard<py::gil_scoped_release>())
      .def("predict", &InferenceModel::predict, py::arg("images"), py::call_guard<py::gil_scoped_release>())
      .def("named_parameters", [](InferenceModel& im) { return items(im.net->named_parameters()); })
      .def("named_buffers", [](InferenceModel& im) { return items(im.net->named_buffers()); });
  m.def(
      "load_inference",
      [](const std::string& path, const std::string& device, bool compact) {
        return load_inference(path, parse_device(device), compact);
      },
      py::arg("path"), py::arg("device") = "cpu", py::arg("compact") = true);
}

void bind_run(py::module_& m) {
  py::class_<Run>(m, "Run")
      .def_static("load", &load_run, py::arg("path"), py::arg("device") = "cpu")
      .def_static("create", &create_run, py::arg("name"), py::arg("num_classes"), py::arg("in_channels"),
                  py::arg("image_size"), py::arg("policy"), py::arg("seed"), py::arg("mean"), py::arg("std"))
      .def_property_readonly("model_name", [](const Run& r) { return r.record.model.name; })
      .def_property_readonly("num_classes", [](const Run& r) { return r.record.model.num_classes; })
      .def_property_readonly("in_channels", [](const Run& r) { return r.record.model.in_channels; })
      .def_property_readonly("image_size", [](const Run& r) { return r.record.model.image_size; })
      .def_property_readonly("policy", [](const Run& r) { return r.network->policy(); })
      .def_property_readonly("seed", [](const Run& r) { return r.record.seed; })
      .def_property_readonly("dom_seed", [](const Run& r) { return r.record.dom_seed; })
      .def_property_readonly("dataset", [](const Run& r) { return r.record.dataset; })
      .def_property_readonly("class_names", [](const Run& r) { return r.record.class_names; })
      .def_property_readonly("mean", [](const Run& r) { return r.record.normalization.mean; })
      .def_property_readonly("std", [](const Run& r) { return r.record.normalization.std; })
      .def_property(
          "step", [](const Run& r) { return r.record.step; },
          [](Run& r, int64_t step) {
            if (step < 0) throw Error("step must be a non-negative integer, not " + std::to_string(step));
            r.record.step = step;
          })
      .def("record_json", [](const Run& r) { return r.record.to_json().dump(); })
      .def("named_parameters", [](Run& r) { return items(r.network->module().named_parameters()); })
      .def("named_buffers", [](Run& r) { return items(r.network->module().named_buffers()); })
      .def(
          "forward", [](Run& r, const torch::Tensor& x) { return r.network->forward(x); }, py::arg("x"))
      .def(
          "train", [](Run& r, bool on) { r.network->module().train(on); }, py::arg("on"))
      .def(
          "begin_training_step",
          [](Run& r, int64_t step) {
            if (step < 0) throw Error("step must be a non-negative integer, not " + std::to_string(step));
            r.network->begin_training_step(static_cast<uint64_t>(step));
          },
          py::arg("step"))
      .def(
          "set_mode", [](Run& r, const Mode& mode, bool per_mode_bn) { r.network->set_mode(mode, per_mode_bn); },
          py::arg("mode"), py::arg("use_mode_batchnorm") = true)
      .def_property_readonly("mode", [](const Run& r) { return r.network->mode(); })
      .def(
          "reestimate_batchnorm",
          [](Run& r, const Mode& mode, int64_t num_batches, const std::function<torch::Tensor(int64_t)>& batch) {
            if (num_batches < 1) throw Error("re-estimating BatchNorm needs at least one batch");
            r.network->reestimate_batchnorm(mode, num_batches, batch);
          },
          py::arg("mode"), py::arg("num_batches"), py::arg("batch"))
      .def("batchnorm_keys", [](const Run& r) { return r.network->batchnorm().keys(); })
      .def(
          "store_batchnorm", [](Run& r, const std::string& key) { r.network->batchnorm().store(key); }, py::arg("key"))
      .def(
          "restore_batchnorm", [](Run& r, const std::string& key) { r.network->batchnorm().restore(key); },
          py::arg("key"))
      .def(
          "macs", [](Run& r, const Mode& mode) { return r.network->macs(mode); }, py::arg("mode"))
      .def(
          "sparsity", [](const Run& r, const Mode& mode) { return r.network->sparsity(mode); }, py::arg("mode"))
      .def("active_weights", [](const Run& r) { return r.network->shadow().active_weights(); })
      .def("num_layers", [](const Run& r) { return r.network->shadow().layers().size(); })
      .def(
          "layer",
          [](const Run& r, int64_t i) -> const ShadowLayer& {
            const auto& layers = r.network->shadow().layers();
            if (i < 0 || i >= int64_t(layers.size()))
              throw py::index_error("no transformed layer " + std::to_string(i));
            return layers[static_cast<size_t>(i)];
          },
          py::return_value_policy::reference_internal, py::arg("index"))
      .def("plain_weights",
           [](const Run& r) {
             // Every convolution's W, transformed or not, for the sparsity of all convolutions.
             std::vector<torch::Tensor> out;
             for (const auto& m : r.network->module().modules(false))
               if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) out.push_back(conv->weight);
             return out;
           })
      .def(
          "to", [](Run& r, const std::string& device) { r.network->to(parse_device(device)); }, py::arg("device"))
      .def_property_readonly("device", [](const Run& r) { return r.network->device().str(); })
      .def(
          "save",
          [](Run& r, const std::string& path) {
            r.record.validate();
            save_checkpoint(path, *r.network, r.record);
          },
          py::arg("path"))
      .def(
          "export",
          [](Run& r, const std::string& path, const Mode& mode, bool fold) {
            export_inference(path, *r.network, r.record, ExportOptions{mode, fold, false});
          },
          py::arg("path"), py::arg("mode"), py::arg("fold_batchnorm") = true)
      .def(
          "inference_model",
          [](Run& r, const Mode& mode, bool fold, bool compact) {
            const Mode previous = r.network->mode();
            const bool training = r.network->module().is_training();
            InferenceModel im = make_inference_model(*r.network, r.record, ExportOptions{mode, fold, false},
                                                     r.network->device(), compact);
            r.network->set_mode(previous);
            r.network->module().train(training);
            return im;
          },
          py::arg("mode"), py::arg("fold_batchnorm"), py::arg("compact"));
}

void bind_data(py::module_& m) {
  m.def("dataset_names", &data::dataset_names);
  m.def(
      "load_dataset",
      [](const std::string& name, const std::string& dir, int64_t synthetic_train, int64_t synthetic_test) {
        data::DatasetOptions options;
        if (synthetic_train > 0) options.synthetic.train_size = synthetic_train;
        if (synthetic_test > 0) options.synthetic.test_size = synthetic_test;
        data::Split split = data::load_dataset(name, dir, options);
        py::dict out;
        for (const auto& [part, set] :
             {std::pair<const char*, const data::Dataset*>{"train", &split.train}, {"test", &split.test}}) {
          out[part] = py::make_tuple(set->images, set->labels);
        }
        out["num_classes"] = split.train.num_classes;
        out["class_names"] = split.train.class_names;
        out["mean"] = split.normalization.mean;
        out["std"] = split.normalization.std;
        return out;
      },
      py::arg("name"), py::arg("dir") = "", py::arg("synthetic_train") = 0, py::arg("synthetic_test") = 0);
  m.def(
      "normalize",
      [](const torch::Tensor& images, const std::vector<double>& mean, const std::vector<double>& std,
         const std::string& device) {
        return data::normalize(images, {mean, std}, parse_device(device));
      },
      py::arg("images"), py::arg("mean"), py::arg("std"), py::arg("device") = "cpu");
  m.def("model_names", &models::model_names);
}

}  // namespace

void bind_network(py::module_& m) {
  bind_inference(m);
  bind_run(m);
  bind_data(m);
}

}  // namespace was::python
