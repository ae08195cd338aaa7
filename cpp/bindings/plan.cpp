// The Plan of plan.hpp: the stack driver and the one formatter of returned states.
#include "plan.hpp"

#include <pybind11/stl.h>

namespace rnnkit_bindings {

py::tuple format_result(const py::object& output, const py::list& groups, bool stacked,
                        const std::vector<bool>& bare) {
  require(bare.empty() || bare.size() == groups.size(), "bare: one flag per group");
  py::list items;
  items.append(output);
  for (std::size_t k = 0; k < groups.size(); ++k) {
    const auto group = groups[k].cast<py::list>();
    if (!stacked) {
      for (auto item : group) items.append(item);
    } else if (!bare.empty() && bare[k]) {
      items.append(group[0]);
    } else {
      items.append(group);
    }
  }
  return py::tuple(items);
}

template <class T>
Plan<T>::Plan(const py::list& kernels, const std::vector<Index>& input_shape, bool time_major,
              bool go_backwards, bool zero_output_for_mask, bool return_sequences,
              bool return_state, Index chunk_steps, const py::object& carried_states,
              const py::object& state_lock, bool stacked)
    : time_major_(time_major),
      go_backwards_(go_backwards),
      zero_output_for_mask_(zero_output_for_mask),
      return_sequences_(return_sequences),
      return_state_(return_state),
      stacked_(stacked),
      chunk_steps_(chunk_steps) {
  require(input_shape.size() == 3, "input_shape must have 3 dimensions");
  shape_ = input_shape;
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
  if (!carried_states.is_none()) {
    const auto groups = carried_states.cast<py::list>();
    state_pointers(groups);  // checks count and shapes
    for (auto group : groups) {
      for (auto array : group.cast<py::list>()) {
        auto a = array.cast<py::array_t<T, py::array::c_style>>();
        require(a.writeable(), "carried_states must be writeable");
        carried_.push_back(a);
      }
    }
    require(!state_lock.is_none(), "carried_states need the layer's state_lock");
    std::size_t total = 0;
    for (const auto& a : carried_) total += static_cast<std::size_t>(a.size());
    carried_snapshot_.resize(total);
    state_lock_object_ = state_lock;
    state_lock_ = state_lock.cast<StateLock*>();
  }
  // The workspace holds the outputs of the cells below the top one, then each run's memory.
  for (std::size_t k = 0; k < kernels_.size(); ++k) {
    const auto& spec = kernels_[k]->spec();
    check_workspace_size<T>(spec, batch_, steps_);
    flops_ += rnnkit::sequence_flops(spec, batch_, steps_);
    if (k + 1 < kernels_.size()) {
      intermediate_offset_.push_back(intermediate_bytes_);
      intermediate_bytes_ += rnnkit::aligned_size(sizeof(T) * batch_ * steps_ * spec.units);
    }
  }
  unmasked_ = layout(false);
  threads_ = rnnkit::ThreadPool::instance().threads();
}

template <class T>
typename Plan<T>::Layout Plan<T>::layout(bool has_mask) const {
  Layout result;
  result.run_offset = intermediate_bytes_;
  for (const Kernel<T>* kernel : kernels_) {
    result.slices.push_back(rnnkit::plan_slices(kernel->functions(), kernel->handle(),
                                                kernel->spec(), batch_, steps_, chunk_steps_,
                                                has_mask));
    result.run_bytes = std::max(result.run_bytes, result.slices.back().bytes());
  }
  return result;
}

template <class T>
std::vector<T*> Plan<T>::state_pointers(const py::list& groups) const {
  require(groups.size() == kernels_.size(), "states: one group per kernel");
  std::vector<T*> pointers;
  for (std::size_t k = 0; k < kernels_.size(); ++k) {
    const auto group = groups[k].cast<py::list>();
    const auto& spec = kernels_[k]->spec();
    require(static_cast<Index>(group.size()) == rnnkit::state_count(spec.cell),
            "states: wrong count");
    for (auto item : group) {
      auto a = item.cast<py::array>();
      c_contiguous<T>(a, "state", {batch_, spec.units});
      require(a.writeable(), "states must be writeable");
      pointers.push_back(static_cast<T*>(a.mutable_data()));
    }
  }
  return pointers;
}

template <class T>
std::array<Index, 2> Plan<T>::input_strides(const py::array& x) const {
  require_dtype<T>(x, "x");
  require(x.ndim() == 3 && x.shape(0) == shape_[0] && x.shape(1) == shape_[1] &&
              x.shape(2) == shape_[2],
          "x: not the shape this plan was made for");
  const auto strides = outer_strides<T>(x, "x");
  return time_major_ ? std::array<Index, 2>{strides[0], strides[1]}
                     : std::array<Index, 2>{strides[1], strides[0]};
}

template <class T>
MaskView Plan<T>::mask_view(const py::object& mask, py::array& keep) const {
  MaskView view;
  if (mask.is_none()) return view;
  keep = mask.cast<py::array>();
  require(py::isinstance<py::array_t<bool>>(keep), "mask must be a bool array");
  const int t_axis = time_major_ ? 0 : 1, b_axis = time_major_ ? 1 : 0;
  require(keep.ndim() == 2 && keep.shape(t_axis) == steps_ && keep.shape(b_axis) == batch_,
          "mask: wrong shape");
  view.data = static_cast<const std::uint8_t*>(keep.data());
  view.step_stride = keep.strides(t_axis);
  view.batch_stride = keep.strides(b_axis);
  return view;
}

template <class T>
py::list Plan<T>::copy_states(const std::vector<T*>& states) const {
  py::list groups;
  std::size_t index = 0;
  for (const Kernel<T>* kernel : kernels_) {
    const Index units = kernel->spec().units;
    py::list group;
    for (Index s = 0; s < rnnkit::state_count(kernel->spec().cell); ++s, ++index) {
      py::array_t<T> copy({batch_, units});
      std::memcpy(copy.mutable_data(), states[index], sizeof(T) * batch_ * units);
      group.append(copy);
    }
    groups.append(group);
  }
  return groups;
}

template <class T>
void Plan<T>::drive(const T* x, Index x_step_stride, Index x_batch_stride, T* const* states,
                    const MaskView& mask, const OutputView<T>& out) {
  const Layout masked = mask.data != nullptr ? layout(true) : Layout();
  const Layout& plan = mask.data != nullptr ? masked : unmasked_;
  // Releasing and retaking the GIL costs ~0.2 us: not worth it for a call shorter than that
  // would let another thread use (a streaming step).
  std::optional<py::gil_scoped_release> release;
  if (flops_ >= kReleaseGilFlops) release.emplace();
  rnnkit::WorkspaceCache::Lease workspace(cache_, plan.run_offset + plan.run_bytes);
  char* base = static_cast<char*>(workspace.data());
  std::size_t state_index = 0;
  for (std::size_t k = 0; k < kernels_.size(); ++k) {
    const Kernel<T>& kernel = *kernels_[k];
    const Index units = kernel.spec().units;
    const bool top = k + 1 == kernels_.size();
    rnnkit::SequenceIO<T> io;
    io.batch = batch_;
    io.steps = steps_;
    io.x = x;
    io.x_step_stride = x_step_stride;
    io.x_batch_stride = x_batch_stride;
    io.mask = mask.data;
    io.mask_step_stride = mask.step_stride;
    io.mask_batch_stride = mask.batch_stride;
    for (Index s = 0; s < rnnkit::state_count(kernel.spec().cell); ++s) {
      io.states[s] = states[state_index++];
    }
    // The layers below write every step, in time order, where the next one reads them.
    const Index b_stride = time_major_ ? units : steps_ * units;
    const Index t_stride = time_major_ ? batch_ * units : units;
    if (top) {
      io.out = out.sequence;
      io.out_step_stride = out.step_stride;
      io.out_batch_stride = out.batch_stride;
      io.outputs_in_time_order = out.time_order;
      io.last_output = out.last;
    } else {
      io.out = reinterpret_cast<T*>(base + intermediate_offset_[k]);
      io.out_step_stride = t_stride;
      io.out_batch_stride = b_stride;
      io.outputs_in_time_order = true;
    }
    io.go_backwards = go_backwards_;
    io.zero_output_for_mask = zero_output_for_mask_;
    io.chunk_steps = chunk_steps_;
    kernel.execute(io, plan.slices[k], base + plan.run_offset);
    x = io.out;
    x_step_stride = t_stride;
    x_batch_stride = b_stride;
  }
}

// The output arrays of one call: every step's outputs or the last one, in the input's axis
// order, and the view the top layer writes them through.
template <class T>
struct CallOutput {
  py::array_t<T> array;
  OutputView<T> view;
};

template <class T>
CallOutput<T> make_output(const Plan<T>& plan) {
  CallOutput<T> result;
  const Index units = plan.top_units(), batch = plan.batch(), steps = plan.steps();
  if (plan.return_sequences()) {
    const auto& shape = plan.input_shape();
    result.array = py::array_t<T>({shape[0], shape[1], units});
    result.view.sequence = result.array.mutable_data();
    result.view.step_stride = plan.time_major() ? batch * units : units;
    result.view.batch_stride = plan.time_major() ? units : steps * units;
  } else {
    result.array = py::array_t<T>({batch, units});
    result.view.last = result.array.mutable_data();
  }
  return result;
}

template <class T>
py::object Plan<T>::run(const py::array& x, const py::list& states, const py::object& mask) {
  const auto strides = input_strides(x);
  const std::vector<T*> pointers = state_pointers(states);
  py::array keep_mask;
  const MaskView mask_data = mask_view(mask, keep_mask);
  CallOutput<T> output = make_output(*this);
  drive(static_cast<const T*>(x.data()), strides[0], strides[1], pointers.data(), mask_data,
        output.view);
  return result(output.array, states);
}

template <class T>
py::object Plan<T>::call(const py::handle& input) {
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
  // States: the carried arrays themselves (stateful) or fresh zeros, grouped per kernel.
  py::list fresh;
  std::vector<T*> states;
  if (!carried_.empty()) {
    for (auto& a : carried_) states.push_back(a.mutable_data());
  } else {
    for (const Kernel<T>* kernel : kernels_) {
      py::list group;
      for (Index s = 0; s < rnnkit::state_count(kernel->spec().cell); ++s) {
        py::array_t<T> zeros({batch_, kernel->spec().units});
        std::memset(zeros.mutable_data(), 0, sizeof(T) * batch_ * kernel->spec().units);
        states.push_back(zeros.mutable_data());
        group.append(zeros);
      }
      fresh.append(group);
    }
  }
  CallOutput<T> output = make_output(*this);
  const Index b_stride = time_major_ ? shape_[2] : steps_ * shape_[2];
  const Index t_stride = time_major_ ? batch_ * shape_[2] : shape_[2];
  // The carried states are written in place: a call that fails part way (an allocation in a
  // worker) puts them back, so a failed call changes nothing.
  if (!carried_.empty()) {
    std::size_t at = 0;
    for (auto& a : carried_) {
      std::memcpy(carried_snapshot_.data() + at, a.data(), sizeof(T) * a.size());
      at += a.size();
    }
  }
  try {
    drive(static_cast<const T*>(x.data()), t_stride, b_stride, states.data(), MaskView(),
          output.view);
  } catch (...) {
    std::size_t at = 0;
    for (auto& a : carried_) {
      std::memcpy(a.mutable_data(), carried_snapshot_.data() + at, sizeof(T) * a.size());
      at += a.size();
    }
    throw;
  }
  if (!return_state_) return output.array;
  // Stateful states are copied so the caller cannot write into the carried ones.
  return result(output.array, carried_.empty() ? fresh : copy_states(states));
}

template class Plan<float>;
template class Plan<double>;

}  // namespace rnnkit_bindings
