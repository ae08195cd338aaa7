// The Eigen-free interface between the bindings and the kernels.
//
// The kernels are compiled once per SIMD level (cpp/src/kernels/kernel_table.cpp), each copy with
// its own renamed Eigen namespace. Only plain data (this header) may cross between those copies
// and the rest of the module: raw pointers, sizes, enums, the cell table. Never Eigen types.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

using Index = std::ptrdiff_t;

// Keras 3 activations by name (keras/src/activations/activations.py).
enum class Activation : int {
  Linear, Tanh, Sigmoid, HardSigmoid, Relu, Elu, Selu, Softsign, Softplus, Swish, Gelu,
  Exponential, HardSilu, Keras2HardSigmoid,
};

enum class CellType : int { SimpleRNN, LSTM, GRU, PeepholeLSTM };

// One row per built-in cell: everything outside its kernel header needs to know about it.
// Its weights, in Keras get_weights() order (see weight_shapes):
//   kernel (input_dim, gates*units), recurrent_kernel (units, gates*units),
//   bias (gates*units), or (2, gates*units) when two_row_bias and reset_after, only with use_bias,
//   then each extra weight, (units,).
constexpr int kMaxExtraWeights = 3;
struct CellInfo {
  CellType type;
  const char* name;   // as Python names it
  Index gates;        // kernel and recurrent_kernel are gates * units wide
  Index states;       // each (batch, units); the first is also the output
  bool two_row_bias;  // with reset_after: input bias row 0, recurrent bias row 1 (GRU)
  const char* extra[kMaxExtraWeights];  // names of the extra weights, the rest null
};

inline constexpr CellInfo kCells[] = {
    // type                  name             gates states two_row_bias extra weights
    {CellType::SimpleRNN,    "simple_rnn",    1,    1,     false,       {}},
    {CellType::LSTM,         "lstm",          4,    2,     false,       {}},
    {CellType::GRU,          "gru",           3,    1,     true,        {}},
    {CellType::PeepholeLSTM, "peephole_lstm", 4,    2,     false,
     {"input_gate_peephole_weights", "forget_gate_peephole_weights",
      "output_gate_peephole_weights"}},
};
inline constexpr Index kCellCount = sizeof(kCells) / sizeof(kCells[0]);

constexpr Index kMaxStates = 2;  // SequenceIO::states

constexpr bool cell_table_is_valid() {
  for (Index i = 0; i < kCellCount; ++i) {
    const CellInfo& row = kCells[i];
    if (static_cast<Index>(row.type) != i || row.gates < 1 || row.states < 1 ||
        row.states > kMaxStates) {
      return false;
    }
  }
  return true;
}
static_assert(cell_table_is_valid(), "kCells: one row per CellType in enum order, 1-2 states");

constexpr const CellInfo& cell_info(CellType cell) { return kCells[static_cast<int>(cell)]; }
constexpr Index gate_count(CellType cell) { return cell_info(cell).gates; }
constexpr Index state_count(CellType cell) { return cell_info(cell).states; }

// Everything that fixes a cell's arithmetic.
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

// The weight list of a cell, Keras layout, C order: kernel, recurrent_kernel, the bias if
// use_bias, then the row's extra weights from first_extra_weight(spec) on.
constexpr Index kKernelWeight = 0, kRecurrentWeight = 1, kBiasWeight = 2;
constexpr Index first_extra_weight(const CellSpec& spec) { return spec.use_bias ? 3 : 2; }

constexpr Index extra_weight_count(CellType cell) {
  Index n = 0;
  while (n < kMaxExtraWeights && cell_info(cell).extra[n] != nullptr) ++n;
  return n;
}
constexpr Index weight_count(const CellSpec& spec) {
  return first_extra_weight(spec) + extra_weight_count(spec.cell);
}

struct WeightShape {
  const char* name = nullptr;
  Index rank = 0;
  Index dims[2] = {0, 0};
};
struct WeightShapes {
  Index count = 0;
  WeightShape items[3 + kMaxExtraWeights] = {};
};

// Every weight's name and shape, in list order. Called by the compiled-once code only (the
// kernels read their weights by position): an inline function compiled into several SIMD
// variants can be merged into one copy by the linker (kernels/isa.hpp).
constexpr WeightShapes weight_shapes(const CellSpec& spec) {
  const CellInfo& info = cell_info(spec.cell);
  const Index width = info.gates * spec.units;
  WeightShapes out;
  out.items[out.count++] = {"kernel", 2, {spec.input_dim, width}};
  out.items[out.count++] = {"recurrent_kernel", 2, {spec.units, width}};
  if (spec.use_bias) {
    out.items[out.count++] = info.two_row_bias && spec.reset_after
                                 ? WeightShape{"bias", 2, {2, width}}
                                 : WeightShape{"bias", 1, {width, 0}};
  }
  for (Index i = 0; i < extra_weight_count(spec.cell); ++i) {
    out.items[out.count++] = {info.extra[i], 1, {spec.units, 0}};
  }
  return out;
}

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
  T* states[kMaxStates] = {nullptr, nullptr};

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
  // weights: weight_count(spec) pointers, in weight_shapes(spec) order and shapes (the bindings
  // check them). The kernel packs copies: the arrays need not outlive this call.
  void* (*create)(const CellSpec& spec, const T* const* weights, Index count);
  void (*destroy)(void* kernel);
  // workspace: workspace_bytes(...) bytes, aligned to 64.
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
