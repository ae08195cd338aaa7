// Plan32 / Plan64: the one route of every built-in recurrent call. An RNN layer over built-in
// cells (or a stack of them) makes a plan for an input shape; every call of that shape runs
// through it:
//   - run(x, states, mask): the validated call (the Python layer has checked and converted
//     every argument): any strides, initial states, a mask; the final states are written into
//     `states`;
//   - call(x): the fast path of a plain repeated call, with no Python in between: the input must
//     be exactly what the plan was made for, or the answer is None and the layer validates.
// Both drive the stack the same way (drive()): one kernel after another over the whole
// sequence, the layers below writing their outputs in time order into the plan's workspace, and
// both format what they return in one place (format_result).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "kernel.hpp"
#include "rnnkit/runtime/thread_pool.hpp"
#include "state_lock.hpp"

namespace rnnkit_bindings {

// Where the top layer writes: every step's output (or null), in processing or time order, and
// the last output (or null). Strides in elements, as SequenceIO's.
template <class T>
struct OutputView {
  T* sequence = nullptr;
  Index step_stride = 0, batch_stride = 0;
  bool time_order = false;
  T* last = nullptr;
};

struct MaskView {
  const std::uint8_t* data = nullptr;
  Index step_stride = 0, batch_stride = 0;
};

// (output, *states) as Keras 3 returns it: states flat for one cell, nested per cell for a
// stack (a bare array for a group marked bare: a custom cell with an int state_size).
py::tuple format_result(const py::object& output, const py::list& groups, bool stacked,
                        const std::vector<bool>& bare);

template <class T>
class Plan {
 public:
  Plan(const py::list& kernels, const std::vector<Index>& input_shape, bool time_major,
       bool go_backwards, bool zero_output_for_mask, bool return_sequences, bool return_state,
       Index chunk_steps, const py::object& carried_states, const py::object& state_lock,
       bool stacked);

  // The validated call; see the top of this file. Returns what the layer returns.
  py::object run(const py::array& x, const py::list& states, const py::object& mask);

  // The fast path: None unless `input` is exactly what the plan was made for.
  py::object call(const py::handle& input);

  // Drives the stack over x (strides as SequenceIO's), states (flat, in/out), an optional mask,
  // writing the top layer's output where `out` says. GIL released here when the work is large.
  void drive(const T* x, Index x_step_stride, Index x_batch_stride, T* const* states,
             const MaskView& mask, const OutputView<T>& out);

  // Checks a nested list of state arrays (one group per kernel) and returns their pointers.
  std::vector<T*> state_pointers(const py::list& groups) const;
  // x's element strides (step, batch), after checking it is an input of this plan's shape.
  std::array<Index, 2> input_strides(const py::array& x) const;
  MaskView mask_view(const py::object& mask, py::array& keep) const;

  void invalidate() { valid_.store(false); }
  bool holds_gil() const { return flops_ < kReleaseGilFlops; }
  const std::vector<Index>& input_shape() const { return shape_; }
  Index batch() const { return batch_; }
  Index steps() const { return steps_; }
  bool time_major() const { return time_major_; }
  bool return_sequences() const { return return_sequences_; }
  bool return_state() const { return return_state_; }
  Index top_units() const { return kernels_.back()->spec().units; }
  // The layer's states as its own fresh arrays, grouped per kernel.
  py::list copy_states(const std::vector<T*>& states) const;
  py::object result(const py::object& output, const py::list& groups) const {
    return return_state_ ? py::object(format_result(output, groups, stacked_, bare_)) : output;
  }

 private:
  // How each kernel's run splits into slices for this shape, and where the workspace keeps
  // the stack's intermediate outputs and each run's memory.
  struct Layout {
    std::vector<rnnkit::Slices> slices;
    std::size_t run_offset = 0, run_bytes = 0;
  };
  Layout layout(bool has_mask) const;

  std::vector<Index> shape_;
  Index batch_ = 0, steps_ = 0;
  bool time_major_, go_backwards_, zero_output_for_mask_, return_sequences_, return_state_,
      stacked_;
  Index chunk_steps_;
  std::vector<bool> bare_;                   // built-in cells: never bare
  std::vector<py::object> kernel_objects_;  // keeps the kernels alive
  std::vector<Kernel<T>*> kernels_;
  std::vector<std::size_t> intermediate_offset_;
  std::size_t intermediate_bytes_ = 0;
  Layout unmasked_;
  std::vector<py::array_t<T, py::array::c_style>> carried_;
  std::vector<T> carried_snapshot_;  // the carried states before a call, put back if it fails
  int threads_ = 1;  // the slicing above was planned for this many threads
  double flops_ = 0;
  static constexpr double kReleaseGilFlops = 1e5;
  rnnkit::WorkspaceCache cache_;
  py::object state_lock_object_;  // keeps the layer's StateLock alive
  StateLock* state_lock_ = nullptr;
  std::atomic<bool> valid_{true};
};

}  // namespace rnnkit_bindings
