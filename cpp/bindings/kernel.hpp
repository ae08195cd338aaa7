// Kernel32 / Kernel64: one built-in cell's weights, packed once by the active SIMD variant, and
// `run` over a whole sequence. Shared by bind_kernels.cpp and plan.hpp. The Python layer
// validates arguments with friendly messages first; the checks here only keep a wrong call from
// ever reaching C++ with a bad pointer.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "rnnkit/runtime/executor.hpp"
#include "rnnkit/runtime/kernel_table.hpp"

namespace rnnkit_bindings {

namespace py = pybind11;
using rnnkit::Activation;
using rnnkit::CellSpec;
using rnnkit::CellType;
using rnnkit::Index;

// Names in enum order: Python reads them from here, so the two lists cannot drift apart.
constexpr std::array<const char*, 14> kActivationNames = {
    "linear",   "tanh",     "sigmoid", "hard_sigmoid", "relu",        "elu",       "selu",
    "softsign", "softplus", "swish",   "gelu",         "exponential", "hard_silu", "keras2_hard_sigmoid"};

template <class Enum, std::size_t N>
Enum from_name(const std::array<const char*, N>& names, const std::string& name,
               const char* what) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  throw py::value_error(std::string("unknown ") + what + " '" + name + "'");
}

// A built-in cell by its name in api.hpp's cell table.
inline CellType cell_from_name(const std::string& name) {
  std::string known;
  for (const rnnkit::CellInfo& row : rnnkit::kCells) {
    if (name == row.name) return row.type;
    known += (known.empty() ? "" : ", ") + std::string(row.name);
  }
  throw py::value_error("unknown cell '" + name + "'; known: " + known);
}

// The spec of a cell (activations aside) as Python describes it; units and input_dim checked.
inline CellSpec cell_spec(const std::string& cell, Index units, Index input_dim, bool use_bias,
                          bool reset_after) {
  CellSpec spec;
  spec.cell = cell_from_name(cell);
  spec.units = units;
  spec.input_dim = input_dim;
  spec.use_bias = use_bias;
  spec.reset_after = reset_after;
  if (units <= 0 || input_dim <= 0) throw py::value_error("units and input_dim must be positive");
  return spec;
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

template <class T>
void require_dtype(const py::array& a, const std::string& name) {
  // Equivalence, not identity: an unpickled array carries an equal but distinct dtype object.
  if (!py::isinstance<py::array_t<T>>(a)) {
    throw py::type_error(name + " must be a " + dtype_name<T>() + " array");
  }
}

// The kernels read and write whole elements through T*: a view at an odd byte offset (NumPy
// allows it) would be undefined behaviour (UBSan: "misaligned address").
template <class T>
void require_aligned(const py::array& a, const std::string& name) {
  require(reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) == 0,
          name + " must be aligned to its element size");
}

template <class T>
const T* c_contiguous(const py::array& a, const std::string& name, std::vector<Index> shape) {
  require_dtype<T>(a, name);
  require(a.ndim() == static_cast<py::ssize_t>(shape.size()), name + ": wrong rank");
  for (std::size_t i = 0; i < shape.size(); ++i) {
    require(a.shape(i) == shape[i], name + ": wrong shape");
  }
  require((a.flags() & py::array::c_style) != 0, name + " must be C-contiguous");
  require_aligned<T>(a, name);
  return static_cast<const T*>(a.data());
}

// "(3, 8)", "(8,)": a shape as Python prints it.
template <class Dims>
std::string shape_text(const Dims& dims, Index rank) {
  std::string text = "(";
  for (Index i = 0; i < rank; ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + (rank == 1 ? ",)" : ")");
}

// The weight list as create() takes it, checked against the cell table: how many, and each
// one's dtype, shape and layout, every message naming the weight.
template <class T>
std::vector<const T*> weight_pointers(const CellSpec& spec, const py::list& weights) {
  const rnnkit::WeightShapes expected = rnnkit::weight_shapes(spec);
  if (static_cast<Index>(weights.size()) != expected.count) {
    std::string names;
    for (Index i = 0; i < expected.count; ++i) {
      names += (i ? ", " : "") + std::string(expected.items[i].name);
    }
    throw py::value_error("weights: expected " + std::to_string(expected.count) + " arrays (" +
                          names + "), received " + std::to_string(weights.size()));
  }
  std::vector<const T*> pointers;
  for (Index i = 0; i < expected.count; ++i) {
    const rnnkit::WeightShape& shape = expected.items[i];
    const std::string name = "weights[" + std::to_string(i) + "] (" + shape.name + ")";
    const py::object item = weights[static_cast<std::size_t>(i)];
    if (!py::isinstance<py::array_t<T>>(item)) {
      const std::string received = py::isinstance<py::array>(item)
                                       ? "a " + std::string(py::str(item.attr("dtype"))) + " array"
                                       : Py_TYPE(item.ptr())->tp_name;
      throw py::type_error(name + " must be a " + dtype_name<T>() + " array, received " +
                           received);
    }
    const auto array = py::reinterpret_borrow<py::array>(item);
    const bool same = array.ndim() == shape.rank &&
                      std::equal(shape.dims, shape.dims + shape.rank, array.shape());
    require(same, name + ": expected shape " + shape_text(shape.dims, shape.rank) +
                      ", received " + shape_text(array.shape(), array.ndim()));
    pointers.push_back(
        c_contiguous<T>(array, name, std::vector<Index>(shape.dims, shape.dims + shape.rank)));
  }
  return pointers;
}

// Element strides of a 3-d array whose last axis is contiguous.
template <class T>
std::array<Index, 2> outer_strides(const py::array& a, const char* name) {
  if (a.size() == 0) return {0, 0};  // nothing is read or written; NumPy's strides are arbitrary
  require_aligned<T>(a, name);
  require(a.shape(2) <= 1 || a.strides(2) == static_cast<py::ssize_t>(sizeof(T)),
          std::string(name) + ": the feature axis must be contiguous");
  for (int i = 0; i < 2; ++i) {
    require(a.strides(i) >= 0 && a.strides(i) % static_cast<py::ssize_t>(sizeof(T)) == 0,
            std::string(name) + ": strides must be whole, non-negative elements");
  }
  return {a.strides(0) / static_cast<Index>(sizeof(T)),
          a.strides(1) / static_cast<Index>(sizeof(T))};
}

// MemoryError (pybind11 translates std::bad_alloc, keeping what()) for a shape past any memory.
struct WorkspaceTooLarge : std::bad_alloc {
  const char* what() const noexcept override {
    return "rnnkit: the working memory for inputs of this batch size and number of timesteps "
           "exceeds the address space";
  }
};

// a * b, or false when it does not fit in an Index (a, b >= 0).
inline bool multiply_fits(Index a, Index b, Index* product) {
  if (a != 0 && b > std::numeric_limits<Index>::max() / a) return false;
  *product = a * b;
  return true;
}

// A run of this shape (batch rows, steps, any chunking, mask or not) must have a working memory
// whose size is computable without overflow: an upper bound (every step's projections, scratch,
// masked states, twice over for alignment and the stack's intermediate outputs) is checked
// before any of the size arithmetic in the kernels. A shape past it can never be allocated:
// WorkspaceTooLarge, which pybind11 raises as MemoryError.
template <class T>
void check_workspace_size(const CellSpec& spec, Index batch, Index steps) {
  require(batch >= 0 && steps >= 0, "batch and steps must be non-negative");
  const Index width = rnnkit::gate_count(spec.cell) * spec.units;
  Index per_row = 0, total = 0;
  if (!multiply_fits(std::max<Index>(steps, 1), width, &per_row) ||
      per_row > std::numeric_limits<Index>::max() - 8 * spec.units ||
      !multiply_fits(per_row + 8 * spec.units, batch, &total) ||
      !multiply_fits(total, static_cast<Index>(2 * sizeof(T)), &total)) {
    throw WorkspaceTooLarge();
  }
}

template <class T>
class Kernel {
 public:
  // weights: in the order and shapes of rnnkit::weight_shapes (Keras get_weights() order).
  Kernel(const std::string& cell, Index units, Index input_dim, const std::string& activation,
         const std::string& recurrent_activation, bool use_bias, bool reset_after,
         const py::list& weights, bool bf16_weights)
      : table_(&rnnkit::active_table()),
        spec_(cell_spec(cell, units, input_dim, use_bias, reset_after)) {
    spec_.activation = from_name<Activation>(kActivationNames, activation, "activation");
    spec_.recurrent_activation =
        from_name<Activation>(kActivationNames, recurrent_activation, "recurrent_activation");
    spec_.bf16_weights = bf16_weights;
    require(!bf16_weights || sizeof(T) == 4, "bfloat16 weights need float32");
    const std::vector<const T*> pointers = weight_pointers<T>(spec_, weights);
    handle_ = functions().create(spec_, pointers.data(), static_cast<Index>(pointers.size()));
  }
  ~Kernel() { functions().destroy(handle_); }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // x: (batch, steps, input_dim), or (steps, batch, input_dim) when time_major; any strides with
  // a contiguous feature axis. states: state arrays (batch, units), C order: read as the initial
  // states and overwritten with the final ones. mask: bool (batch, steps) or (steps, batch).
  // out: all outputs in x's axis order; last_output: (batch, units).
  void run(const py::array& x, bool time_major, const py::list& states, const py::object& mask,
           const py::object& out, const py::object& last_output, bool go_backwards,
           bool zero_output_for_mask, bool outputs_in_time_order, Index chunk_steps) const {
    require_dtype<T>(x, "x");
    require(x.ndim() == 3, "x must have rank 3");
    require(x.shape(2) == spec_.input_dim, "x: feature size differs from the kernel's input_dim");
    const int t_axis = time_major ? 0 : 1, b_axis = time_major ? 1 : 0;
    rnnkit::SequenceIO<T> io;
    io.batch = x.shape(b_axis);
    io.steps = x.shape(t_axis);
    const auto xs = outer_strides<T>(x, "x");
    io.x = static_cast<const T*>(x.data());
    io.x_step_stride = xs[t_axis];
    io.x_batch_stride = xs[b_axis];

    const Index n_states = rnnkit::state_count(spec_.cell);
    require(static_cast<Index>(states.size()) == n_states, "states: wrong count");
    std::vector<py::array> keep_states;  // hold references while the GIL is released
    for (Index s = 0; s < n_states; ++s) {
      auto a = states[s].cast<py::array>();
      c_contiguous<T>(a, "state", {io.batch, spec_.units});
      require(a.writeable(), "states must be writeable");
      io.states[s] = static_cast<T*>(a.mutable_data());
      keep_states.push_back(a);
    }

    py::array mask_array, out_array, last_array;
    if (!mask.is_none()) {
      mask_array = mask.cast<py::array>();
      require(py::isinstance<py::array_t<bool>>(mask_array), "mask must be a bool array");
      require(mask_array.ndim() == 2 && mask_array.shape(t_axis) == io.steps &&
                  mask_array.shape(b_axis) == io.batch,
              "mask: wrong shape");
      io.mask = static_cast<const std::uint8_t*>(mask_array.data());
      io.mask_step_stride = mask_array.strides(t_axis);
      io.mask_batch_stride = mask_array.strides(b_axis);
    }
    if (!out.is_none()) {
      out_array = out.cast<py::array>();
      require_dtype<T>(out_array, "out");
      require(out_array.ndim() == 3 && out_array.shape(t_axis) == io.steps &&
                  out_array.shape(b_axis) == io.batch && out_array.shape(2) == spec_.units,
              "out: wrong shape");
      require(out_array.writeable(), "out must be writeable");
      const auto os = outer_strides<T>(out_array, "out");
      io.out = static_cast<T*>(out_array.mutable_data());
      io.out_step_stride = os[t_axis];
      io.out_batch_stride = os[b_axis];
    }
    if (!last_output.is_none()) {
      last_array = last_output.cast<py::array>();
      c_contiguous<T>(last_array, "last_output", {io.batch, spec_.units});
      require(last_array.writeable(), "last_output must be writeable");
      io.last_output = static_cast<T*>(last_array.mutable_data());
    }
    io.go_backwards = go_backwards;
    io.zero_output_for_mask = zero_output_for_mask;
    io.outputs_in_time_order = outputs_in_time_order;
    io.chunk_steps = chunk_steps;

    const bool has_mask = io.mask != nullptr;
    check_workspace_size<T>(spec_, io.batch, io.steps);
    const rnnkit::Slices slices = rnnkit::plan_slices(functions(), handle_, spec_, io.batch,
                                                      io.steps, chunk_steps, has_mask);
    py::gil_scoped_release release;
    rnnkit::WorkspaceCache::Lease workspace(cache_, slices.bytes());
    execute(io, slices, workspace.data());
  }

  // One pass over io with the workspace of `slices` (GIL released by the caller).
  void execute(const rnnkit::SequenceIO<T>& io, const rnnkit::Slices& slices,
               void* workspace) const {
    rnnkit::execute(functions(), handle_, spec_, io, slices, workspace);
  }

  std::size_t workspace_bytes(Index batch, Index steps, Index chunk_steps, bool has_mask) const {
    check_workspace_size<T>(spec_, batch, steps);
    return functions().workspace_bytes(handle_, batch, steps, chunk_steps, has_mask);
  }

  // How many threads would share every step's columns in a run of this shape (0: none; the
  // rows are split instead, or the run is one thread's). For tests.
  int split_parts(Index batch, Index steps, Index chunk_steps, bool has_mask) const {
    check_workspace_size<T>(spec_, batch, steps);
    return rnnkit::plan_slices(functions(), handle_, spec_, batch, steps, chunk_steps, has_mask)
        .split_parts;
  }

  std::string isa() const { return table_->isa; }
  const rnnkit::KernelTable* table() const { return table_; }
  const CellSpec& spec() const { return spec_; }
  void* handle() const { return handle_; }

  // Plans made with this kernel stop using it once its cell's weights change.
  void invalidate() { valid_.store(false); }
  bool valid() const { return valid_.load(std::memory_order_relaxed); }

  const rnnkit::KernelFunctions<T>& functions() const {
    if constexpr (sizeof(T) == 4) {
      return table_->f32;
    } else {
      return table_->f64;
    }
  }

  const rnnkit::KernelTable* table_;  // the variant that made handle_ also runs and frees it
  CellSpec spec_;
  void* handle_ = nullptr;
  mutable rnnkit::WorkspaceCache cache_;
  std::atomic<bool> valid_{true};
};

}  // namespace rnnkit_bindings
