// rnnkit._core: registers each binding area. Bindings only translate between NumPy and the
// plain-data interface of rnnkit/api.hpp; the arithmetic lives in cpp/include.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_dispatch(py::module_& m);
void register_kernels(py::module_& m);
void register_plans(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit's compiled recurrence kernels (private: use the rnnkit package)";
  register_dispatch(m);
  register_kernels(m);
  register_plans(m);
}
