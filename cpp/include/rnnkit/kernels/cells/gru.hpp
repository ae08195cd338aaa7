// GRU: gates z, r, h (Keras order); one state. Reproduces keras.layers.GRUCell.call
// (keras/src/layers/rnn/gru.py), x_* = x_t · kernel_* + input_bias_* (put in `gates` by the driver):
//   reset_after=True (bias (2, 3*units): row 0 input bias, row 1 recurrent bias; the CuDNN and
//   PyTorch convention, one fused recurrent product for all three gates):
//     m = h_{t-1} · recurrent_kernel + recurrent_bias,   m = [m_z | m_r | m_h]
//     z = recurrent_activation(x_z + m_z)   r = recurrent_activation(x_r + m_r)
//     hh = activation(x_h + r * m_h)
//   reset_after=False (bias (3*units,)): r is needed before the third product
//     z = recurrent_activation(x_z + h_{t-1} · U_z)   r = recurrent_activation(x_r + h_{t-1} · U_r)
//     hh = activation(x_h + (r * h_{t-1}) · U_h)
//   h_t = z * h_{t-1} + (1 - z) * hh
#pragma once

#include "rnnkit/kernels/activations.hpp"
#include "rnnkit/kernels/cells/cell_kernel.hpp"
#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
class GRUKernel : public CellKernel<T> {
 public:
  GRUKernel(const CellSpec& spec, const T* const* weights)
      : CellKernel<T>(spec, weights,
                      spec.use_bias && spec.reset_after ? weights[kBiasWeight] + 3 * spec.units
                                                        : nullptr) {
    if (!spec.reset_after) {  // r is needed between the two recurrent products
      const Index units = spec.units;
      const bool bf16 = spec.bf16_weights;
      const T* recurrent_kernel = weights[kRecurrentWeight];
      recurrent_zr_ = PackedWeights<T>(recurrent_kernel, units, 3 * units, 0, 2 * units, bf16);
      recurrent_h_ = PackedWeights<T>(recurrent_kernel, units, 3 * units, 2 * units, units, bf16);
    }
  }

  // reset_after: the recurrent product m (rows, 3*units); otherwise r * h (rows, units).
  Index scratch_size(Index rows) const { return rows * (spec_.reset_after ? 3 : 1) * spec_.units; }
  // reset_after=False needs all of r * h before its second product: not split.
  Index split_limit() const {
    return spec_.reset_after ? rnnkit::split_limit<T>(spec_.units) : 0;
  }

  // gates: (rows, 3*units) contiguous, holding the input projection; overwritten.
  // states_out may alias states_in.
  void step(T* gates, Index rows, const T* const* states_in, T* const* states_out,
            T* scratch) const {
    if (spec_.reset_after) {
      step_reset_after(gates, rows, states_in[0], states_out[0], scratch);
    } else {
      step_reset_before(gates, rows, states_in[0], states_out[0], scratch);
    }
  }

  // One thread's share of a split step (reset_after only): `part`'s units of every gate, all
  // rows. h_in is the whole previous h; h_out is written in part's units.
  void step_part(T* gates, Index rows, const T* h_in, T* h_out, T* const* /*states*/, T* m,
                 const Part& part) const {
    const Index units = spec_.units;
    multiply_part<false>(weights_.recurrent_kernel, 3, units, part, h_in, units, rows, m,
                         3 * units);  // + recurrent bias
    update_reset_after(gates, m, rows, h_in, h_out, part.first_unit, part.units);
  }

 private:
  void step_reset_after(T* gates, Index rows, const T* h_in, T* h_out, T* m) const {
    const Index units = spec_.units;
    weights_.recurrent_kernel.multiply(h_in, units, rows, m, 3 * units);  // + recurrent bias
    update_reset_after(gates, m, rows, h_in, h_out, 0, units);
  }

  // The gate math of units [first, first + n) of every row, m holding the recurrent product.
  void update_reset_after(T* gates, const T* m, Index rows, const T* h_in, T* h_out, Index first,
                          Index n) const {
    const Index units = spec_.units, width = 3 * units;
    for (Index r = 0; r < rows; ++r) {
      T* z = gates + r * width + first;
      T* reset = z + units;
      T* candidate = z + 2 * units;
      const T* mz = m + r * width + first;
      ArrayMap<T>(z, n) += ConstArrayMap<T>(mz, n);
      ArrayMap<T>(reset, n) += ConstArrayMap<T>(mz + units, n);
      activate(spec_.recurrent_activation, z, z, n);
      activate(spec_.recurrent_activation, reset, reset, n);
      ArrayMap<T>(candidate, n) += ConstArrayMap<T>(reset, n) * ConstArrayMap<T>(mz + 2 * units, n);
      activate(spec_.activation, candidate, candidate, n);
      blend(z, h_in + r * units + first, h_out + r * units + first, n);
    }
  }

  void step_reset_before(T* gates, Index rows, const T* h_in, T* h_out, T* reset_h) const {
    const Index units = spec_.units, width = 3 * units;
    recurrent_zr_.multiply_add(h_in, units, rows, gates, width);
    for (Index r = 0; r < rows; ++r) {
      T* x = gates + r * width;
      activate(spec_.recurrent_activation, x, x, 2 * units);  // z, r
      ArrayMap<T>(reset_h + r * units, units) =
          ConstArrayMap<T>(x + units, units) * ConstArrayMap<T>(h_in + r * units, units);
    }
    recurrent_h_.multiply_add(reset_h, units, rows, gates + 2 * units, width);
    for (Index r = 0; r < rows; ++r) {
      T* x = gates + r * width;
      activate(spec_.activation, x + 2 * units, x + 2 * units, units);
      blend(x, h_in + r * units, h_out + r * units, units);
    }
  }

  // h_t = z * h_{t-1} + (1 - z) * hh over n units of one row (z at `z`, hh 2*units further);
  // h_out may alias h_in.
  void blend(const T* z_data, const T* h_in, T* h_out, Index n) const {
    const ConstArrayMap<T> z(z_data, n), hh(z_data + 2 * spec_.units, n);
    ArrayMap<T>(h_out, n) = z * ConstArrayMap<T>(h_in, n) + (T(1) - z) * hh;
  }

  using CellKernel<T>::spec_;
  using CellKernel<T>::weights_;

  PackedWeights<T> recurrent_zr_, recurrent_h_;  // reset_after=False: U_z|U_r, then U_h
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
