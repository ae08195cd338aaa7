// SIMD level selection: which kernel variants are compiled in, which this CPU runs, which is
// active (chosen at import; RNNKIT_FORCE_ISA forces a lower one).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "rnnkit/runtime/kernel_table.hpp"
#include "rnnkit/runtime/thread_pool.hpp"

namespace py = pybind11;

namespace {

std::vector<std::string> names(const std::vector<const rnnkit::KernelTable*>& tables) {
  std::vector<std::string> out;
  for (const auto* t : tables) out.emplace_back(t->isa);
  return out;
}

}  // namespace

void register_dispatch(py::module_& m) {
  try {
    rnnkit::active_table();  // read RNNKIT_FORCE_ISA now, so a bad value fails the import
  } catch (const std::invalid_argument& e) {
    throw py::import_error(e.what());
  }
  m.def("compiled_isas", [] { return names(rnnkit::compiled_tables()); },
        "SIMD levels compiled into this module, lowest first.");
  m.def("supported_isas", [] { return names(rnnkit::supported_tables()); },
        "SIMD levels this CPU can run, lowest first.");
  m.def("active_isa", [] { return std::string(rnnkit::active_table().isa); },
        "The SIMD level kernels made from now on use.");
  m.def("set_isa", [](const std::string& isa) {
        try {
          rnnkit::set_active_table(isa);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("isa"), "Use this SIMD level for kernels made from now on.");
  m.def("get_num_threads", [] { return rnnkit::ThreadPool::instance().threads(); },
        "Threads one call may use (batch rows are split across them).");
  m.def("set_num_threads", [](int threads) {
        if (threads < 1) throw py::value_error("`threads` must be a positive integer");
        py::gil_scoped_release release;  // waits for a running call to finish
        rnnkit::ThreadPool::instance().set_threads(threads);
      },
      py::arg("threads"), "Set the threads one call may use.");
  m.def("_inject_worker_fault", [](int after, const std::string& kind) {
        if (kind != "memory" && kind != "runtime") {
          throw py::value_error("kind must be 'memory' or 'runtime'");
        }
        rnnkit::ThreadPool::inject_fault(after, kind == "memory");
      },
      py::arg("after"), py::arg("kind") = "memory",
      "Test hook: the pool task after `after` more tasks throws (MemoryError or RuntimeError "
      "in Python); after < 0 disarms it.");
}
