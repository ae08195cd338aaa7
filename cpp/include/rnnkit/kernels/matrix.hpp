// Eigen aliases shared by the kernels. Keras stores weights as C-order (rows = inputs) arrays, so
// every matrix here is row-major and `x · kernel` maps onto NumPy memory without a transpose.
#pragma once

#include <cstdint>
#include <cstring>

#include <Eigen/Core>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "rnnkit/api.hpp"
#include "rnnkit/kernels/isa.hpp"
#include "rnnkit/kernels/packed_product.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// A (rows x cols) view whose rows are `stride` elements apart.
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class T>
MatrixMap<T> matrix_view(T* data, Index rows, Index cols, Index stride) {
  return MatrixMap<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}
template <class T>
ConstMatrixMap<T> matrix_view(const T* data, Index rows, Index cols, Index stride) {
  return ConstMatrixMap<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

// v rounded to the nearest bfloat16 (ties to even), as T.
template <class T>
T round_to_bf16(T v) {
  return static_cast<T>(static_cast<float>(Eigen::bfloat16(static_cast<float>(v))));
}

// Rounds n values to bfloat16 into `out` (out.size() == n) and returns its data, or returns
// `data` unchanged; nullptr stays nullptr.
template <class T>
const T* maybe_rounded(const T* data, Index n, bool bf16, RowVector<T>& out) {
  if (!bf16 || data == nullptr) return data;
  out = Eigen::Map<const RowVector<T>>(data, n).unaryExpr([](T v) { return round_to_bf16(v); });
  return out.data();
}

// The weights every built-in cell has, packed once from Keras-layout arrays when the kernel is
// made (so a call never reads Python-owned memory and never re-lays out weights). Biases are
// packed with their matrix: multiply() writes bias + product in one pass.
template <class T>
struct CellWeights {
  PackedWeights<T> kernel;            // (input_dim, gates*units) and the input bias
  PackedWeights<T> recurrent_kernel;  // (units, gates*units) and the recurrent bias, if any

  // weights: the cell's weight list (api.hpp); its bias, if any, goes with the input product.
  // recurrent_bias_data: a bias for the recurrent product alone (the GRU's with reset_after).
  CellWeights(const CellSpec& spec, const T* const* weights,
              const T* recurrent_bias_data = nullptr) {
    const Index width = gate_count(spec.cell) * spec.units;
    const bool bf16 = spec.bf16_weights;  // biases rounded too: every path computes the same
    const T* input_bias_data = spec.use_bias ? weights[kBiasWeight] : nullptr;
    RowVector<T> input_bias, recurrent_bias;
    kernel = PackedWeights<T>(weights[kKernelWeight], spec.input_dim, width, 0, width, bf16,
                              maybe_rounded(input_bias_data, width, bf16, input_bias));
    recurrent_kernel =
        PackedWeights<T>(weights[kRecurrentWeight], spec.units, width, 0, width, bf16,
                         maybe_rounded(recurrent_bias_data, width, bf16, recurrent_bias));
  }
};

// Split runs: each of `parts` threads computes the same panels of every gate's block of columns
// (units [first_unit, first_unit + units) of every gate), which needs every gate's `units`
// columns to be whole panels.
struct Part {
  Index first_panel = 0, end_panel = 0;  // within each gate's block
  Index first_unit = 0, units = 0;
};

// The most parts a cell with `units` units splits into: its panels per gate (0: not splittable).
template <class T>
Index split_limit(Index units) {
  constexpr Index panel = PackedWeights<T>::panel_width();
  return units % panel == 0 ? units / panel : 0;
}

template <class T>
Part part_of(Index units, Index part, Index parts) {
  constexpr Index panel = PackedWeights<T>::panel_width();
  const Index per_gate = units / panel;
  Part p;
  p.first_panel = per_gate * part / parts;
  p.end_panel = per_gate * (part + 1) / parts;
  p.first_unit = p.first_panel * panel;
  p.units = (p.end_panel - p.first_panel) * panel;
  return p;
}

// c += a · w (Accumulate) or c = bias + a · w, only `part`'s columns of each of `gates` blocks.
template <bool Accumulate, class T>
void multiply_part(const PackedWeights<T>& w, Index gates, Index units, const Part& part,
                   const T* a, Index lda, Index rows, T* c, Index ldc) {
  const Index per_gate = units / PackedWeights<T>::panel_width();
  for (Index g = 0; g < gates; ++g) {
    const Index first = g * per_gate + part.first_panel, end = g * per_gate + part.end_panel;
    if constexpr (Accumulate) {
      w.multiply_add(a, lda, rows, c, ldc, first, end);
    } else {
      w.multiply(a, lda, rows, c, ldc, first, end);
    }
  }
}

// memcpy/memset rather than std::copy_n/std::fill: those are templates the linker could merge
// across SIMD levels (see isa.hpp); these are plain library calls.
template <class T>
void copy_n(const T* from, Index n, T* to) {
  std::memcpy(to, from, sizeof(T) * static_cast<std::size_t>(n));
}
template <class T>
void set_zero(T* data, Index n) {
  std::memset(data, 0, sizeof(T) * static_cast<std::size_t>(n));  // IEEE 754 +0.0 is all zero bits
}

// Copy `rows` rows of `cols` contiguous elements.
template <class T>
void copy_rows(const T* from, Index from_stride, T* to, Index to_stride, Index rows, Index cols) {
  for (Index r = 0; r < rows; ++r) {
    std::memcpy(to + r * to_stride, from + r * from_stride, sizeof(T) * cols);
  }
}

// One 64-byte cache line from `from` to the 64-byte aligned `to` with non-temporal stores: the
// line goes to memory without first being read into the cache (x86; elsewhere a plain copy).
inline void stream_line(const void* from, void* to) {
#if defined(__AVX512F__)
  _mm512_stream_si512(static_cast<__m512i*>(to), _mm512_loadu_si512(from));
#elif defined(__AVX__)
  const __m256i* in = static_cast<const __m256i*>(from);
  __m256i* out = static_cast<__m256i*>(to);
  _mm256_stream_si256(out, _mm256_loadu_si256(in));
  _mm256_stream_si256(out + 1, _mm256_loadu_si256(in + 1));
#elif defined(__SSE2__)
  const __m128i* in = static_cast<const __m128i*>(from);
  __m128i* out = static_cast<__m128i*>(to);
  for (int i = 0; i < 4; ++i) _mm_stream_si128(out + i, _mm_loadu_si128(in + i));
#else
  std::memcpy(to, from, 64);
#endif
}

// Orders this thread's non-temporal stores before whatever it does next (a caller reading the
// output once the run returns, or a pool thread reporting that its slice is done).
inline void finish_streaming() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// copy_rows for data that will not be read again soon, at least not from this core's caches: an
// output sequence larger than L2 (see streams_output). Whole aligned cache lines bypass the
// caches, so writing the output neither reads it in first nor evicts the weights (LSTM, 256
// rows, 256 units: 4 % faster). Call finish_streaming() before the data is handed over.
template <class T>
void stream_rows(const T* from, Index from_stride, T* to, Index to_stride, Index rows, Index cols) {
  constexpr Index kLine = 64 / static_cast<Index>(sizeof(T));
  for (Index r = 0; r < rows; ++r) {
    const T* in = from + r * from_stride;
    T* out = to + r * to_stride;
    const auto misaligned = reinterpret_cast<std::uintptr_t>(out) % 64;
    Index j = misaligned % sizeof(T) != 0
                  ? cols  // not even element-aligned: plain copies
                  : std::min<Index>(cols, (64 - misaligned) % 64 / sizeof(T));
    std::memcpy(out, in, sizeof(T) * static_cast<std::size_t>(j));
    for (; j + kLine <= cols; j += kLine) stream_line(in + j, out + j);
    std::memcpy(out + j, in + j, sizeof(T) * static_cast<std::size_t>(cols - j));
  }
}

// Whether an output of `bytes` is written with stream_rows: once it is larger than half of one
// core's L2 (2 MiB here), the early steps' rows leave the cache before the run ends anyway.
inline bool streams_output(std::size_t bytes) { return bytes >= (std::size_t(1) << 20); }

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
