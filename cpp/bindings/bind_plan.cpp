// Plan32 / Plan64: the fast path of a repeated call. RNN.__call__ makes a plan after a call
// that needed no initial_state, mask or constants; the next calls with an input of the same
// shape and dtype go straight here: one C++ call for the whole stack, no Python validation, no
// allocation except the returned arrays, working memory reused, the GIL released. A stateful
// plan updates the layer's carried state arrays in place, holding the layer's StateLock.
//
// A plan answers None (and the Python layer takes its validating slow path) when the input is
// not exactly what it was made for, when a kernel's weights changed, when the SIMD level did, or
// when the layer invalidated it (its carried states were replaced while the call waited).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "kernel.hpp"
#include "rnnkit/runtime/thread_pool.hpp"
#include "state_lock.hpp"

namespace py = pybind11;
using rnnkit::Index;
using rnnkit_bindings::Kernel;
using rnnkit_bindings::require;
using rnnkit_bindings::StateLock;

namespace {

template <class T>
class Plan {
 public:
  Plan(const py::list& kernels, const std::vector<Index>& input_shape, bool time_major,
       bool go_backwards, bool zero_output_for_mask, bool return_sequences, bool return_state,
       Index chunk_steps, const py::object& carried_states, const py::object& state_lock,
       bool stacked, const std::vector<bool>& bare_groups)
      : time_major_(time_major),
        go_backwards_(go_backwards),
        zero_output_for_mask_(zero_output_for_mask),
        return_sequences_(return_sequences),
        return_state_(return_state),
        stacked_(stacked),
        chunk_steps_(chunk_steps),
        bare_groups_(bare_groups) {
    require(input_shape.size() == 3, "input_shape must have 3 dimensions");
    shape_ = {input_shape[0], input_shape[1], input_shape[2]};
    batch_ = shape_[time_major ? 1 : 0];
    steps_ = shape_[time_major ? 0 : 1];
    require(kernels.size() > 0, "a plan needs at least one kernel");
    Index features = shape_[2];
    for (const auto& item : kernels) {
      kernel_objects_.push_back(py::reinterpret_borrow<py::object>(item));
      Kernel<T>* kernel = item.cast<Kernel<T>*>();
      require(kernel->spec().input_dim == features, "kernels do not chain");
      features = kernel->spec().units;
      kernels_.push_back(kernel);
    }
    require(bare_groups_.size() == kernels_.size(), "bare_groups: one flag per kernel");
    if (!carried_states.is_none()) {
      auto groups = carried_states.cast<py::list>();
      require(groups.size() == kernels_.size(), "carried_states: one group per kernel");
      for (std::size_t k = 0; k < kernels_.size(); ++k) {
        auto group = groups[k].cast<py::list>();
        const Index n_states = rnnkit::state_count(kernels_[k]->spec().cell);
        require(static_cast<Index>(group.size()) == n_states, "carried_states: wrong count");
        for (Index s = 0; s < n_states; ++s) {
          auto a = group[s].cast<py::array_t<T, py::array::c_style>>();
          require(a.ndim() == 2 && a.shape(0) == batch_ &&
                      a.shape(1) == kernels_[k]->spec().units && a.writeable(),
                  "carried_states: wrong shape");
          carried_.push_back(a);
        }
      }
      require(!state_lock.is_none(), "carried_states need the layer's state_lock");
      state_lock_object_ = state_lock;
      state_lock_ = state_lock.cast<StateLock*>();
    }
    // Workspace: outputs of the cells below the top one, then the largest cell's run.
    std::size_t bytes = 0;
    for (std::size_t k = 0; k < kernels_.size(); ++k) {
      const auto& spec = kernels_[k]->spec();
      rnnkit_bindings::check_workspace_size<T>(spec, batch_, steps_);
      slices_.push_back(rnnkit::plan_slices(kernels_[k]->functions(), kernels_[k]->handle(), spec,
                                            batch_, steps_, chunk_steps_, false));
      run_bytes_ = std::max(run_bytes_, slices_.back().bytes());
      if (k + 1 < kernels_.size()) {
        intermediate_offset_.push_back(bytes);
        bytes += rnnkit::aligned_size(sizeof(T) * batch_ * steps_ * spec.units);
      }
    }
    run_offset_ = bytes;
    threads_ = rnnkit::ThreadPool::instance().threads();
    for (const Kernel<T>* kernel : kernels_) {
      flops_ += rnnkit::sequence_flops(kernel->spec(), batch_, steps_);
    }
  }

  // Whether a call keeps the GIL throughout (too short to share; see call()).
  bool holds_gil() const { return flops_ < kReleaseGilFlops; }

  // From now on every call answers None: the layer dropped this plan.
  void invalidate() { valid_.store(false); }

  py::object call(const py::handle& input) {
    if (!py::array_t<T, py::array::c_style>::check_(input)) return py::none();
    auto x = py::reinterpret_borrow<py::array>(input);
    if (reinterpret_cast<std::uintptr_t>(x.data()) % alignof(T) != 0) return py::none();
    if (x.ndim() != 3 || x.shape(0) != shape_[0] || x.shape(1) != shape_[1] ||
        x.shape(2) != shape_[2]) {
      return py::none();
    }
    if (rnnkit::ThreadPool::instance().threads() != threads_) return py::none();
    // A stateful call takes turns on the layer's states; once it has them, the plan must still
    // be the layer's (a validating call that held them may have replaced the carried arrays).
    std::optional<StateLock::Guard> turn;
    if (state_lock_ != nullptr) turn.emplace(*state_lock_);
    if (!valid_.load()) return py::none();
    const rnnkit::KernelTable* active = &rnnkit::active_table();
    for (const Kernel<T>* kernel : kernels_) {
      if (!kernel->valid() || kernel->table() != active) return py::none();
    }

    const Index units = kernels_.back()->spec().units;
    py::array_t<T> out, last;
    if (return_sequences_) {
      out = py::array_t<T>({shape_[0], shape_[1], units});
    } else {
      last = py::array_t<T>({batch_, units});
    }
    // States: the carried arrays themselves (stateful) or fresh zeros (returned if asked).
    std::vector<py::array_t<T>> fresh;
    std::vector<T*> states;
    if (!carried_.empty()) {
      for (auto& a : carried_) states.push_back(a.mutable_data());
    } else {
      for (const Kernel<T>* kernel : kernels_) {
        for (Index s = 0; s < rnnkit::state_count(kernel->spec().cell); ++s) {
          fresh.emplace_back(std::vector<Index>{batch_, kernel->spec().units});
          std::memset(fresh.back().mutable_data(), 0, sizeof(T) * batch_ * kernel->spec().units);
          states.push_back(fresh.back().mutable_data());
        }
      }
    }
    const T* input_data = static_cast<const T*>(x.data());
    T* out_data = return_sequences_ ? out.mutable_data() : nullptr;
    T* last_data = return_sequences_ ? nullptr : last.mutable_data();
    {
      // Releasing and retaking the GIL costs ~0.2 us: not worth it for a call shorter than that
      // would let another thread use (a streaming step).
      std::optional<py::gil_scoped_release> release;
      if (flops_ >= kReleaseGilFlops) release.emplace();
      run(input_data, states, out_data, last_data);
    }
    if (!return_state_) return return_sequences_ ? py::object(out) : py::object(last);
    return with_states(return_sequences_ ? py::object(out) : py::object(last), states);
  }

 private:
  void run(const T* input, const std::vector<T*>& states, T* out, T* last) {
    const Index b_stride = time_major_ ? 1 : steps_, t_stride = time_major_ ? batch_ : 1;
    rnnkit::WorkspaceCache::Lease workspace(cache_, run_offset_ + run_bytes_);
    char* base = static_cast<char*>(workspace.data());
    Index input_dim = shape_[2];
    std::size_t state_index = 0;
    for (std::size_t k = 0; k < kernels_.size(); ++k) {
      const Kernel<T>& kernel = *kernels_[k];
      const Index units = kernel.spec().units;
      const bool top = k + 1 == kernels_.size();
      rnnkit::SequenceIO<T> io;
      io.batch = batch_;
      io.steps = steps_;
      io.x = input;
      io.x_step_stride = t_stride * input_dim;
      io.x_batch_stride = b_stride * input_dim;
      for (Index s = 0; s < rnnkit::state_count(kernel.spec().cell); ++s) {
        io.states[s] = states[state_index++];
      }
      T* sequence = top ? out : reinterpret_cast<T*>(base + intermediate_offset_[k]);
      io.out = sequence;
      io.out_step_stride = t_stride * units;
      io.out_batch_stride = b_stride * units;
      io.outputs_in_time_order = !top;
      io.last_output = top ? last : nullptr;
      io.go_backwards = go_backwards_;
      io.zero_output_for_mask = zero_output_for_mask_;
      io.chunk_steps = chunk_steps_;
      kernel.execute(io, slices_[k], base + run_offset_);
      input = sequence;
      input_dim = units;
    }
  }

  // (output, *states) as Keras 3 returns it: flat for one cell, nested per cell for a stack
  // (a bare array for a group the Python layer marks bare). Stateful states are copied so the
  // caller cannot write into the carried ones.
  py::object with_states(py::object output, const std::vector<T*>& states) const {
    py::list items;
    items.append(output);
    std::size_t index = 0;
    for (std::size_t k = 0; k < kernels_.size(); ++k) {
      const auto& spec = kernels_[k]->spec();
      py::list group;
      for (Index s = 0; s < rnnkit::state_count(spec.cell); ++s, ++index) {
        py::array_t<T> copy({batch_, spec.units});
        std::memcpy(copy.mutable_data(), states[index], sizeof(T) * batch_ * spec.units);
        group.append(copy);
      }
      if (!stacked_) {
        for (auto item : group) items.append(item);
      } else if (bare_groups_[k]) {
        items.append(group[0]);
      } else {
        items.append(group);
      }
    }
    return py::tuple(items);
  }

  std::vector<Index> shape_;
  Index batch_ = 0, steps_ = 0;
  bool time_major_, go_backwards_, zero_output_for_mask_, return_sequences_, return_state_,
      stacked_;
  Index chunk_steps_;
  std::vector<bool> bare_groups_;
  std::vector<py::object> kernel_objects_;  // keeps the kernels alive
  std::vector<Kernel<T>*> kernels_;
  std::vector<py::array_t<T, py::array::c_style>> carried_;
  std::vector<rnnkit::Slices> slices_;
  std::vector<std::size_t> intermediate_offset_;
  std::size_t run_offset_ = 0, run_bytes_ = 0;
  int threads_ = 1;  // the slicing above was planned for this many threads
  double flops_ = 0;
  static constexpr double kReleaseGilFlops = 1e5;
  rnnkit::WorkspaceCache cache_;
  py::object state_lock_object_;  // keeps the layer's StateLock alive
  StateLock* state_lock_ = nullptr;
  std::atomic<bool> valid_{true};
};

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

template <class T>
void bind_plan(py::module_& m, const char* name) {
  py::class_<Plan<T>>(m, name)
      .def(py::init<const py::list&, const std::vector<Index>&, bool, bool, bool, bool, bool,
                    Index, const py::object&, const py::object&, bool, const std::vector<bool>&>(),
           py::arg("kernels"), py::arg("input_shape"), py::arg("time_major"),
           py::arg("go_backwards"), py::arg("zero_output_for_mask"),
           py::arg("return_sequences"), py::arg("return_state"), py::arg("chunk_steps"),
           py::arg("carried_states"), py::arg("state_lock"), py::arg("stacked"),
           py::arg("bare_groups"))
      .def("__call__", &Plan<T>::call, py::arg("inputs"))
      .def("function", &plan_function<T>)
      .def("invalidate", &Plan<T>::invalidate)
      .def_property_readonly("holds_gil", &Plan<T>::holds_gil);
}

}  // namespace

void register_plans(py::module_& m) {
  py::class_<StateLock>(m, "StateLock",
                        "Reentrant lock of a stateful layer's states, shared with its plans.")
      .def(py::init<>())
      .def("__enter__", [](StateLock& lock) { lock.acquire(); })
      .def("__exit__", [](StateLock& lock, const py::args&) { lock.release(); });
  bind_plan<float>(m, "Plan32");
  bind_plan<double>(m, "Plan64");
}
