// Eigen aliases shared by the kernels. Keras stores weights as C-order (rows = inputs) arrays, so
// every matrix here is row-major and `x · kernel` maps onto NumPy memory without a transpose.
#pragma once

#include <cstring>

#include <Eigen/Core>

#include "rnnkit/api.hpp"
#include "rnnkit/isa.hpp"
#include "rnnkit/packed_product.hpp"

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

// The weights every built-in cell has, copied once from Keras-layout arrays when the kernel is
// made (so a call never reads Python-owned memory and never re-lays out weights).
template <class T>
struct CellWeights {
  Matrix<T> kernel;                    // (input_dim, gates*units)
  PackedWeights<T> packed_kernel;      // the same, packed: faster than Eigen for a few rows
  PackedWeights<T> recurrent_kernel;   // (units, gates*units), packed for the step's product
  RowVector<T> input_bias;         // (gates*units) added to x · kernel; empty without bias

  CellWeights(const CellSpec& spec, const T* kernel_data, const T* recurrent_data,
              const T* input_bias_data) {
    const Index width = gate_count(spec.cell) * spec.units;
    const bool bf16 = spec.bf16_weights;
    kernel = matrix_view(kernel_data, spec.input_dim, width, width);
    packed_kernel = PackedWeights<T>(kernel_data, spec.input_dim, width, 0, width, bf16);
    recurrent_kernel = PackedWeights<T>(recurrent_data, spec.units, width, 0, width, bf16);
    if (input_bias_data != nullptr) {
      input_bias = Eigen::Map<const RowVector<T>>(input_bias_data, width);
    }
    if (bf16) {  // every path then computes with the same, rounded, weights
      kernel = kernel.unaryExpr([](T v) { return round_to_bf16(v); });
      input_bias = input_bias.unaryExpr([](T v) { return round_to_bf16(v); });
    }
  }
};

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

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
