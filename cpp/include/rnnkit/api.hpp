// The Eigen-free interface between the bindings and the kernels.
//
// The kernels are compiled once per SIMD level (see kernel_table.cpp), each copy with its own
// renamed Eigen namespace. Only plain data (this header) may cross between those copies and the
// rest of the module: raw pointers, sizes, enums. Never Eigen types.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

using Index = std::ptrdiff_t;

// Keras 3 activations by name (keras/src/activations/activations.py).
enum class Activation : int {
  Linear, Tanh, Sigmoid, HardSigmoid, Relu, Elu, Selu, Softsign, Softplus, Swish, Gelu,
  Exponential, HardSilu,
};

enum class CellType : int { SimpleRNN, LSTM, GRU };

// Everything that fixes a cell's arithmetic. Weights are in Keras layout, C order:
//   kernel (input_dim, G*units), recurrent_kernel (units, G*units),
//   bias (G*units) or, for GRU with reset_after, (2, G*units).
struct CellSpec {
  CellType cell = CellType::SimpleRNN;
  Index units = 0;
  Index input_dim = 0;
  Activation activation = Activation::Tanh;
  Activation recurrent_activation = Activation::Sigmoid;
  bool use_bias = true;
  bool reset_after = true;  // GRU only
  // Opt-in, float32 only: every weight rounded to bfloat16 when set; the recurrent weights are
  // also stored as bfloat16 (half the bytes to stream per step), arithmetic stays float32.
  bool bf16_weights = false;
};

// Gates per cell: the width of kernel and recurrent_kernel is gates * units.
constexpr Index gate_count(CellType cell) {
  return cell == CellType::LSTM ? 4 : cell == CellType::GRU ? 3 : 1;
}
// States per cell, each (batch, units): LSTM has h and c, the others h only.
constexpr Index state_count(CellType cell) { return cell == CellType::LSTM ? 2 : 1; }

// One sequence pass of one cell over a (batch, steps, features) block. Every array is addressed
// through element strides, so batch-major and time-major data (and batch slices of either) share
// one code path with no transposed copies. The feature axis is always contiguous.
template <class T>
struct SequenceIO {
  Index batch = 0;
  Index steps = 0;

  const T* x = nullptr;  // x[b, t, :] at x + t*x_step_stride + b*x_batch_stride
  Index x_step_stride = 0;
  Index x_batch_stride = 0;

  const std::uint8_t* mask = nullptr;  // optional; nonzero = step is used
  Index mask_step_stride = 0;
  Index mask_batch_stride = 0;

  // In: initial states; out: final states. state_count(cell) arrays, each (batch, units) C order.
  T* states[2] = {nullptr, nullptr};

  // Optional: every step's output, out[b, i, :] at out + i*out_step_stride + b*out_batch_stride,
  // where i is the processing index (reversed time with go_backwards, as Keras returns it) or,
  // with outputs_in_time_order, the original time index (what a stacked layer below needs).
  T* out = nullptr;
  Index out_step_stride = 0;
  Index out_batch_stride = 0;
  bool outputs_in_time_order = false;

  // Optional: the last step's output (batch, units), masks applied as Keras applies them.
  T* last_output = nullptr;

  bool go_backwards = false;
  bool zero_output_for_mask = false;
  // Steps whose input projections are computed in one product: -1 = all (unroll=True), 0 = an
  // automatic bound on working memory independent of the sequence length, > 0 = that many.
  Index chunk_steps = -1;
};

class StepBarrier;  // step_barrier.hpp

// Function table of one compiled SIMD variant. An opaque kernel made by one variant is only ever
// used and destroyed by that same variant's functions.
template <class T>
struct KernelFunctions {
  void* (*create)(const CellSpec& spec, const T* kernel, const T* recurrent_kernel, const T* bias);
  void (*destroy)(void* kernel);
  // workspace: workspace_bytes(...) bytes aligned to 64, or null to let the run allocate it.
  void (*run)(const void* kernel, const SequenceIO<T>& io, void* workspace);
  // Working memory (bytes) a run of this shape needs; independent of steps when unroll=False.
  std::size_t (*workspace_bytes)(const void* kernel, Index batch, Index steps, Index chunk_steps,
                                 bool has_mask);

  // Split runs: `parts` threads each compute some columns of every step, all rows, passing
  // `barrier` after each step (no mask). The most parts this kernel can be split into (0: none).
  Index (*split_limit)(const void* kernel);
  // Working memory of a split run (shared by its parts), bytes.
  std::size_t (*split_workspace_bytes)(const void* kernel, Index batch, Index steps,
                                       Index chunk_steps, int parts);
  // Part `part` of `parts`; every part must run at once, each on its own thread.
  void (*run_part)(const void* kernel, const SequenceIO<T>& io, void* workspace, int part,
                   int parts, StepBarrier& barrier);
};

struct KernelTable {
  const char* isa;  // "v1", "v3", "v4" or "generic"
  KernelFunctions<float> f32;
  KernelFunctions<double> f64;
};

}  // namespace rnnkit
