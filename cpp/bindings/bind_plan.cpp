// Binds the plans of plan.hpp (Plan32 / Plan64), their fast path as a bare CPython function,
// the one state formatter, and Bidirectional's run: both directions through their plans,
// writing their halves of the merged output in place.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "plan.hpp"
#include "state_lock.hpp"

namespace py = pybind11;
using rnnkit::Index;
using rnnkit_bindings::MaskView;
using rnnkit_bindings::OutputView;
using rnnkit_bindings::Plan;
using rnnkit_bindings::require;
using rnnkit_bindings::StateLock;

namespace {

// Plan.function(): the plan's call as a bare CPython function (METH_O) that holds the plan.
// pybind11's dispatcher (argument casting, overload resolution, finding `self`'s C++ object)
// costs ~0.3 us, a sixth of a streaming step.
template <class T>
constexpr const char* kCapsuleName = std::is_same_v<T, float> ? "rnnkit.Plan32" : "rnnkit.Plan64";

inline PyObject* set_python_error() {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

template <class T>
PyObject* call_plan(PyObject* capsule, PyObject* input) {
  auto* plan = static_cast<Plan<T>*>(PyCapsule_GetPointer(capsule, kCapsuleName<T>));
  if (plan == nullptr) return nullptr;
  try {
    return plan->call(input).release().ptr();
  } catch (...) {
    return set_python_error();
  }
}

template <class T>
py::object plan_function(const py::object& self) {
  static PyMethodDef definition = {"plan_call", &call_plan<T>, METH_O,
                                   "The plan's call (a bare CPython function)."};
  // The capsule points at the plan and owns a reference to it; the function owns the capsule.
  py::capsule capsule(self.cast<Plan<T>*>(), kCapsuleName<T>, [](PyObject* c) {
    Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(c)));
  });
  if (PyCapsule_SetContext(capsule.ptr(), self.inc_ref().ptr()) != 0) {
    self.dec_ref();
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(PyCFunction_New(&definition, capsule.ptr()));
}

// Bidirectional: the forward and backward plans (made for one input shape) over x, each with
// its states (in/out) and the mask. The backward plan writes its outputs in time order, so a
// returned sequence needs no reversal: with merge_mode "concat" both write their halves of one
// array in place; "sum", "mul" and "ave" combine the backward outputs into the forward ones;
// None returns both. Returns what Keras's Bidirectional returns.
template <class T>
py::object run_bidirectional(Plan<T>& forward, Plan<T>& backward, const py::array& x,
                             const py::list& forward_states, const py::list& backward_states,
                             const py::object& mask, const py::object& merge_mode) {
  require(forward.input_shape() == backward.input_shape() &&
              forward.time_major() == backward.time_major() &&
              forward.return_sequences() == backward.return_sequences() &&
              forward.return_state() == backward.return_state(),
          "the two directions' plans differ");
  const std::string mode = merge_mode.is_none() ? "none" : merge_mode.cast<std::string>();
  require(mode == "concat" || mode == "sum" || mode == "mul" || mode == "ave" || mode == "none",
          "unknown merge_mode");
  const auto strides = forward.input_strides(x);
  const std::vector<T*> forward_pointers = forward.state_pointers(forward_states);
  const std::vector<T*> backward_pointers = backward.state_pointers(backward_states);
  py::array keep_mask;
  const MaskView mask_data = forward.mask_view(mask, keep_mask);

  const bool sequences = forward.return_sequences(), time_major = forward.time_major();
  const Index batch = forward.batch(), steps = forward.steps();
  const Index uf = forward.top_units(), ub = backward.top_units();
  const auto& shape = forward.input_shape();
  const Index rows = sequences ? batch * steps : batch;  // output rows of either direction
  auto make = [&](Index units) {
    return sequences ? py::array_t<T>({shape[0], shape[1], units}) : py::array_t<T>({batch, units});
  };
  // A view writing `units` columns from `column` of an array `width` wide.
  auto view = [&](py::array_t<T>& array, Index column, Index width, bool time_order) {
    OutputView<T> v;
    T* data = array.mutable_data() + column;
    if (!sequences) {
      v.last = data;  // contiguous (batch, units): only when width == units
      return v;
    }
    v.sequence = data;
    v.step_stride = time_major ? batch * width : width;
    v.batch_stride = time_major ? width : steps * width;
    v.time_order = time_order;
    return v;
  };
  const T* input = static_cast<const T*>(x.data());
  py::array_t<T> first = make(mode == "concat" ? uf + ub : uf);
  py::array_t<T> second;
  if (mode == "concat" && sequences) {
    forward.drive(input, strides[0], strides[1], forward_pointers.data(), mask_data,
                  view(first, 0, uf + ub, false));
    backward.drive(input, strides[0], strides[1], backward_pointers.data(), mask_data,
                   view(first, uf, uf + ub, true));
  } else {
    py::array_t<T> forward_out = mode == "concat" ? make(uf) : first;
    second = make(ub);
    forward.drive(input, strides[0], strides[1], forward_pointers.data(), mask_data,
                  view(forward_out, 0, uf, false));
    backward.drive(input, strides[0], strides[1], backward_pointers.data(), mask_data,
                   view(second, 0, ub, true));
    T* out = first.mutable_data();
    const T* f = forward_out.data();
    const T* b = second.data();
    if (mode == "concat") {  // the last outputs: (batch, uf) and (batch, ub) side by side
      for (Index r = 0; r < rows; ++r) {
        std::memcpy(out + r * (uf + ub), f + r * uf, sizeof(T) * uf);
        std::memcpy(out + r * (uf + ub) + uf, b + r * ub, sizeof(T) * ub);
      }
    } else if (mode != "none") {
      require(uf == ub, "sum, mul and ave need both directions' outputs of one size");
      const Index n = rows * uf;
      for (Index i = 0; i < n; ++i) {
        out[i] = mode == "sum" ? out[i] + b[i] : mode == "mul" ? out[i] * b[i]
                                                                : (out[i] + b[i]) / T(2);
      }
    }
  }
  py::list items;
  items.append(first);
  if (mode == "none") items.append(second);
  if (!forward.return_state()) {
    return mode == "none" ? py::object(py::tuple(items)) : py::object(first);
  }
  for (const auto* states : {&forward_states, &backward_states}) {
    const Plan<T>& plan = states == &forward_states ? forward : backward;
    py::tuple formatted = plan.result(py::none(), *states).template cast<py::tuple>();
    for (std::size_t i = 1; i < formatted.size(); ++i) items.append(formatted[i]);
  }
  return py::tuple(items);
}

template <class T>
void bind_plan(py::module_& m, const char* name) {
  py::class_<Plan<T>>(m, name)
      .def(py::init<const py::list&, const std::vector<Index>&, bool, bool, bool, bool, bool,
                    Index, const py::object&, const py::object&, bool>(),
           py::arg("kernels"), py::arg("input_shape"), py::arg("time_major"),
           py::arg("go_backwards"), py::arg("zero_output_for_mask"),
           py::arg("return_sequences"), py::arg("return_state"), py::arg("chunk_steps"),
           py::arg("carried_states"), py::arg("state_lock"), py::arg("stacked"))
      .def("run", &Plan<T>::run, py::arg("x"), py::arg("states"), py::arg("mask"))
      .def("__call__", &Plan<T>::call, py::arg("inputs"))
      .def("function", &plan_function<T>)
      .def("invalidate", &Plan<T>::invalidate)
      .def_property_readonly("input_shape", &Plan<T>::input_shape)
      .def_property_readonly("holds_gil", &Plan<T>::holds_gil);
  m.def("run_bidirectional", &run_bidirectional<T>, py::arg("forward"), py::arg("backward"),
        py::arg("x"), py::arg("forward_states"), py::arg("backward_states"), py::arg("mask"),
        py::arg("merge_mode"));
}

}  // namespace

void register_plans(py::module_& m) {
  py::class_<StateLock>(m, "StateLock",
                        "Reentrant lock of a stateful layer's states, shared with its plans.")
      .def(py::init<>())
      .def("__enter__", [](StateLock& lock) { lock.acquire(); })
      .def("__exit__", [](StateLock& lock, const py::args&) { lock.release(); });
  m.def("format_states", &rnnkit_bindings::format_result, py::arg("output"), py::arg("groups"),
        py::arg("stacked"), py::arg("bare"),
        "(output, *states) as Keras 3 returns it: flat for one cell, nested per cell for a stack.");
  bind_plan<float>(m, "Plan32");
  bind_plan<double>(m, "Plan64");
}
