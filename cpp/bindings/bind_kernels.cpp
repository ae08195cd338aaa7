// Binds Kernel32 / Kernel64 and the activation and cell name lists.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernel.hpp"

namespace py = pybind11;
using rnnkit_bindings::Kernel;
using rnnkit_bindings::kActivationNames;
using rnnkit_bindings::kCellNames;
using rnnkit::Index;

namespace {

template <class T>
void bind_kernel(py::module_& m, const char* name) {
  py::class_<Kernel<T>>(m, name)
      .def(py::init<const std::string&, Index, Index, const std::string&, const std::string&,
                    bool, bool, const py::array&, const py::array&, const py::object&, bool>(),
           py::arg("cell"), py::arg("units"), py::arg("input_dim"), py::arg("activation"),
           py::arg("recurrent_activation"), py::arg("use_bias"), py::arg("reset_after"),
           py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"),
           py::arg("bf16_weights") = false)
      .def("run", &Kernel<T>::run, py::arg("x"), py::arg("time_major"), py::arg("states"),
           py::arg("mask"), py::arg("out"), py::arg("last_output"), py::arg("go_backwards"),
           py::arg("zero_output_for_mask"), py::arg("outputs_in_time_order"),
           py::arg("chunk_steps"))
      .def("workspace_bytes", &Kernel<T>::workspace_bytes, py::arg("batch"), py::arg("steps"),
           py::arg("chunk_steps"), py::arg("has_mask"))
      .def("split_parts", &Kernel<T>::split_parts, py::arg("batch"), py::arg("steps"),
           py::arg("chunk_steps"), py::arg("has_mask"))
      .def("invalidate", &Kernel<T>::invalidate)
      .def_property_readonly("valid", &Kernel<T>::valid)
      .def_property_readonly("isa", &Kernel<T>::isa);
}

}  // namespace

void register_kernels(py::module_& m) {
  m.attr("ACTIVATIONS") = py::tuple(py::cast(std::vector<std::string>(
      kActivationNames.begin(), kActivationNames.end())));
  m.attr("CELLS") =
      py::tuple(py::cast(std::vector<std::string>(kCellNames.begin(), kCellNames.end())));
  bind_kernel<float>(m, "Kernel32");
  bind_kernel<double>(m, "Kernel64");
}
