// The extension module was._C: the library's types and functions as the
// Python package (python/was) uses them. Errors reach Python as exceptions
// (module.cpp); everything a user can pass is checked by the library.
#pragma once

#include <torch/extension.h>

namespace was::python {

/// Policy, Mode, transforms, ShadowLayer, MACs and compact convolutions.
void bind_core(pybind11::module_& m);
/// Runs of the zoo (networks with their records), checkpoints, exports,
/// inference models and data sets.
void bind_network(pybind11::module_& m);

}  // namespace was::python
