// The one driver every cell shares: input projection per chunk of steps, the time loop forwards
// or backwards, masks, states in and out, last output and all outputs, batch- or time-major data
// through strides. Semantics are those of keras/src/backend/numpy/rnn.py (tf.keras 2 for
// time_major), with one documented choice: a masked step outputs the previous *output* (zeros
// before the first unmasked step), as the SPEC and Keras's TensorFlow backend do.
//
// A Kernel provides spec(), weights() (the packed kernel and input bias for the projection),
// scratch_size(rows) and step(gates, rows, states_in, states_out, scratch) where `gates` holds
// x_t · kernel + input_bias for `rows` batch rows and states_out may alias states_in; for split
// runs (run_sequence_part, below) also split_limit() and step_part(...), the same step for some
// of the units only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

// How many steps' input projections are held at once. `requested` < 0 asks for all of them
// (unroll=True); 0 asks for a bound that keeps memory independent of the sequence length while
// each product still has enough rows (kChunkRows) to run at full matrix-product speed; > 0 is an
// explicit count (tests use it to prove every chunking gives the same numbers).
// From kStepProjectionBatch rows up, one step's projection is already a product of enough rows,
// so auto projects step by step, straight into the gates (no chunk buffer, no staging copy).
constexpr Index kStepProjectionBatch = 32;

inline Index chunk_length(Index requested, Index steps, Index batch, Index width,
                          std::size_t element_size) {
  constexpr Index kChunkRows = 512;
  constexpr std::size_t kChunkBytes = std::size_t(4) << 20;
  if (requested < 0) return steps;
  if (requested > 0) return std::min(requested, steps);
  if (batch >= kStepProjectionBatch) return 1;
  const Index by_rows = (kChunkRows + batch - 1) / std::max<Index>(batch, 1);
  const Index by_bytes =
      static_cast<Index>(kChunkBytes / (element_size * std::max<Index>(batch * width, 1)));
  return std::max<Index>(1, std::min({by_rows, by_bytes, steps}));
}

// Batch-major rows of several steps are copied into one matrix before their projection.
inline Index staging_elements(Index chunk, Index batch, Index input_dim) {
  return batch > 1 && chunk > 1 ? chunk * batch * input_dim : 0;
}

// Elements of working memory one run needs: projections of one chunk, the kernel's scratch, and
// with a mask the candidate states and the previous output.
template <class Kernel>
std::size_t workspace_elements(const Kernel& kernel, Index batch, Index steps, Index chunk_steps,
                               bool has_mask) {
  const CellSpec& spec = kernel.spec();
  const Index width = gate_count(spec.cell) * spec.units;
  const Index chunk = chunk_length(chunk_steps, steps, batch, width, sizeof(typename Kernel::Scalar));
  std::size_t n = static_cast<std::size_t>(chunk * batch * width + kernel.scratch_size(batch));
  n += static_cast<std::size_t>(staging_elements(chunk, batch, spec.input_dim));
  if (has_mask) n += static_cast<std::size_t>((state_count(spec.cell) + 1) * batch * spec.units);
  return n;
}

// proj[j, b, :] = x[b, first_time + j, :] · kernel + input_bias for j < count, as one matrix
// product with the packed kernel (which writes bias + product in one pass): the (step, row) pairs
// are one matrix with a constant row stride when x is time-major (or batch is 1, or count is 1);
// otherwise they are first copied, in that order, into `staging` (count * batch * input_dim
// elements; cheap next to the product, and a product of many rows runs far faster than many
// products of few rows).
// With `part` (a split run), only that part's columns of every gate.
template <class T>
void project_inputs(const CellWeights<T>& w, const SequenceIO<T>& io, Index first_time,
                    Index count, T* proj, T* staging, const Part* part = nullptr,
                    Index gates = 1) {
  const Index batch = io.batch, dim = w.kernel.depth(), width = w.kernel.cols();
  const T* x = io.x + first_time * io.x_step_stride;
  const T* rows = x;
  Index stride = batch == 1 ? io.x_step_stride : io.x_batch_stride;
  if (count > 1 && batch > 1 && io.x_step_stride != batch * io.x_batch_stride) {
    for (Index j = 0; j < count; ++j) {
      copy_rows(x + j * io.x_step_stride, io.x_batch_stride, staging + j * batch * dim, dim,
                batch, dim);
    }
    rows = staging;
    stride = dim;
  }
  if (part != nullptr) {
    multiply_part<false>(w.kernel, gates, width / gates, *part, rows, stride, count * batch, proj,
                         width);
    return;
  }
  w.kernel.multiply(rows, stride, count * batch, proj, width);
}

// workspace: workspace_elements(...) elements, allocated by the caller (once, not per step).
template <class Kernel, class T>
void run_sequence(const Kernel& kernel, const SequenceIO<T>& io, T* workspace) {
  const CellSpec& spec = kernel.spec();
  const Index batch = io.batch, steps = io.steps, units = spec.units;
  const Index width = gate_count(spec.cell) * units;
  const Index n_states = state_count(spec.cell);
  const bool masked = io.mask != nullptr;
  if (batch == 0) return;
  if (steps == 0) {
    if (io.last_output) set_zero(io.last_output, batch * units);
    return;
  }

  const Index chunk = chunk_length(io.chunk_steps, steps, batch, width, sizeof(T));
  T* proj = workspace;
  T* scratch = proj + chunk * batch * width;
  T* staging = scratch + kernel.scratch_size(batch);
  T* candidate[2] = {nullptr, nullptr};  // new states before the mask decides
  T* previous_output = nullptr;          // Keras's prev_output: zeros until a step is used
  if (masked) {
    T* p = staging + staging_elements(chunk, batch, spec.input_dim);
    for (Index s = 0; s < n_states; ++s, p += batch * units) candidate[s] = p;
    previous_output = io.last_output != nullptr ? io.last_output : p;
    set_zero(previous_output, batch * units);
  }
  T* const* states_out = masked ? candidate : io.states;
  const bool stream = io.out != nullptr && streams_output(sizeof(T) * batch * steps * units);

  Index chunk_first = 0;  // first time index held in proj
  for (Index i = 0; i < steps; ++i) {
    const Index t = io.go_backwards ? steps - 1 - i : i;
    if (i % chunk == 0) {
      const Index count = std::min(chunk, steps - i);
      chunk_first = io.go_backwards ? t - count + 1 : t;
      project_inputs(kernel.weights(), io, chunk_first, count, proj, staging);
    }
    T* gates = proj + (t - chunk_first) * batch * width;
    kernel.step(gates, batch, io.states, states_out, scratch);

    const T* output = io.states[0];  // every built-in cell outputs its first state
    if (masked) {
      for (Index b = 0; b < batch; ++b) {
        T* prev = previous_output + b * units;
        if (io.mask[t * io.mask_step_stride + b * io.mask_batch_stride] != 0) {
          for (Index s = 0; s < n_states; ++s) {
            copy_n(candidate[s] + b * units, units, io.states[s] + b * units);
          }
          copy_n(io.states[0] + b * units, units, prev);
        } else if (io.zero_output_for_mask) {
          set_zero(prev, units);
        }
      }
      output = previous_output;
    }
    if (io.out != nullptr) {
      const Index position = io.outputs_in_time_order ? t : i;
      T* out = io.out + position * io.out_step_stride;
      if (stream) {
        stream_rows(output, units, out, io.out_batch_stride, batch, units);
      } else {
        copy_rows(output, units, out, io.out_batch_stride, batch, units);
      }
    }
  }
  if (stream) finish_streaming();
  if (io.last_output != nullptr && !masked) {
    copy_n(io.states[0], batch * units, io.last_output);
  }
}

// Split runs: `parts` threads run the sequence together, each computing part_of(units, part,
// parts) of every step's columns for all rows, and pass `barrier` after every step, since each
// step reads the whole previous h. No masks. Shared working memory: the projections of one chunk
// and the kernel's scratch (each part writes its own columns), h twice (read the previous one,
// write the next one), then each part's staging.
template <class Kernel>
std::size_t split_workspace_elements(const Kernel& kernel, Index batch, Index steps,
                                     Index chunk_steps, int parts) {
  const CellSpec& spec = kernel.spec();
  const Index width = gate_count(spec.cell) * spec.units;
  const Index chunk =
      chunk_length(chunk_steps, steps, batch, width, sizeof(typename Kernel::Scalar));
  return static_cast<std::size_t>(chunk * batch * width + kernel.scratch_size(batch) +
                                  2 * batch * spec.units +
                                  parts * staging_elements(chunk, batch, spec.input_dim));
}

template <class Kernel, class T, class Barrier>
void run_sequence_part(const Kernel& kernel, const SequenceIO<T>& io, T* workspace, int part_index,
                       int parts, Barrier& barrier) {
  const CellSpec& spec = kernel.spec();
  const Index batch = io.batch, steps = io.steps, units = spec.units;
  const Index gates = gate_count(spec.cell), width = gates * units;
  const Part part = part_of<T>(units, part_index, parts);
  const Index first = part.first_unit, n = part.units;
  if (batch == 0) return;
  if (steps == 0) {
    if (io.last_output) {
      for (Index b = 0; b < batch; ++b) set_zero(io.last_output + b * units + first, n);
    }
    return;
  }
  const Index chunk = chunk_length(io.chunk_steps, steps, batch, width, sizeof(T));
  T* proj = workspace;
  T* scratch = proj + chunk * batch * width;
  T* h[2] = {scratch + kernel.scratch_size(batch), scratch + kernel.scratch_size(batch) +
                                                       batch * units};
  T* staging = h[1] + batch * units +
               part_index * staging_elements(chunk, batch, spec.input_dim);

  copy_rows(io.states[0] + first, units, h[0] + first, units, batch, n);
  barrier.arrive_and_wait();  // all of h[0] is there before any part reads it
  Index chunk_first = 0;
  for (Index i = 0; i < steps; ++i) {
    const Index t = io.go_backwards ? steps - 1 - i : i;
    if (i % chunk == 0) {  // this part's columns only: no other part reads them
      const Index count = std::min(chunk, steps - i);
      chunk_first = io.go_backwards ? t - count + 1 : t;
      project_inputs(kernel.weights(), io, chunk_first, count, proj, staging, &part, gates);
    }
    const T* h_in = h[i % 2];
    T* h_out = h[(i + 1) % 2];
    kernel.step_part(proj + (t - chunk_first) * batch * width, batch, h_in, h_out, io.states,
                     scratch, part);
    if (io.out != nullptr) {
      const Index position = io.outputs_in_time_order ? t : i;
      copy_rows(h_out + first, units, io.out + position * io.out_step_stride + first,
                io.out_batch_stride, batch, n);
    }
    // Every part has written its share of h_out, and read all of h_in (which the next step
    // overwrites), before any part goes on.
    barrier.arrive_and_wait();
  }
  const T* h_last = h[steps % 2];
  copy_rows(h_last + first, units, io.states[0] + first, units, batch, n);
  if (io.last_output != nullptr) {
    copy_rows(h_last + first, units, io.last_output + first, units, batch, n);
  }
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
