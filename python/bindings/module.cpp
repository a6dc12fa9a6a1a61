#include <filesystem>

#include "bindings.h"
#include "was/core/error.h"

namespace py = pybind11;

namespace {

// The CLI prints "error: WHAT (HINT)"; Python gets "WHAT (HINT)".
std::string message_of(const was::Error& e) {
  return e.hint().empty() ? std::string(e.what()) : std::string(e.what()) + " (" + e.hint() + ")";
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "The C++ core of the Weight Augmentation Strategy (import was, not was._C)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const was::NotFoundError& e) {
      PyErr_SetString(PyExc_FileNotFoundError, message_of(e).c_str());
    } catch (const was::Error& e) {
      PyErr_SetString(PyExc_ValueError, message_of(e).c_str());
    } catch (const std::filesystem::filesystem_error& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
  was::python::bind_core(m);
  was::python::bind_network(m);
}
