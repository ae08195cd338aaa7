// Binds Kernel32 / Kernel64, the activation names and the cell table.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernel.hpp"

namespace py = pybind11;
using rnnkit_bindings::Kernel;
using rnnkit_bindings::kActivationNames;
using rnnkit::Index;

namespace {

template <class T>
void bind_kernel(py::module_& m, const char* name) {
  py::class_<Kernel<T>>(m, name)
      .def(py::init<const std::string&, Index, Index, const std::string&, const std::string&,
                    bool, bool, const py::list&, bool>(),
           py::arg("cell"), py::arg("units"), py::arg("input_dim"), py::arg("activation"),
           py::arg("recurrent_activation"), py::arg("use_bias"), py::arg("reset_after"),
           py::arg("weights"), py::arg("bf16_weights") = false)
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

// [(name, shape), ...] of a cell's weights, in the order Kernel32/Kernel64 take them.
py::list weight_shapes(const std::string& cell, Index units, Index input_dim, bool use_bias,
                       bool reset_after) {
  const auto spec = rnnkit_bindings::cell_spec(cell, units, input_dim, use_bias, reset_after);
  const rnnkit::WeightShapes shapes = rnnkit::weight_shapes(spec);
  py::list out;
  for (Index i = 0; i < shapes.count; ++i) {
    const rnnkit::WeightShape& w = shapes.items[i];
    py::tuple shape(w.rank);
    for (Index d = 0; d < w.rank; ++d) shape[d] = w.dims[d];
    out.append(py::make_tuple(w.name, shape));
  }
  return out;
}

}  // namespace

void register_kernels(py::module_& m) {
  m.attr("ACTIVATIONS") = py::tuple(py::cast(std::vector<std::string>(
      kActivationNames.begin(), kActivationNames.end())));
  py::list cells;
  for (const rnnkit::CellInfo& row : rnnkit::kCells) {
    cells.append(py::dict(py::arg("name") = row.name, py::arg("gates") = row.gates,
                          py::arg("states") = row.states));
  }
  m.attr("CELLS") = py::tuple(cells);
  m.def("weight_shapes", &weight_shapes, py::arg("cell"), py::arg("units"),
        py::arg("input_dim"), py::arg("use_bias"), py::arg("reset_after"),
        "[(name, shape), ...] of a built-in cell's weights, in Keras get_weights() order.");
  bind_kernel<float>(m, "Kernel32");
  bind_kernel<double>(m, "Kernel64");
}
