// LSTM: gates i, f, c, o (Keras order); states h, c. Reproduces keras.layers.LSTMCell.call
// (keras/src/layers/rnn/lstm.py):
//   z = x_t · kernel + bias + h_{t-1} · recurrent_kernel,   z = [z_i | z_f | z_c | z_o]
//   i = recurrent_activation(z_i)     f = recurrent_activation(z_f)
//   c_t = f * c_{t-1} + i * activation(z_c)
//   o = recurrent_activation(z_o)     h_t = o * activation(c_t)
// The driver has already put x_t · kernel + bias into `gates`; one fused product adds the
// recurrent part of all four gates.
#pragma once

#include <type_traits>

#include "rnnkit/kernels/activations.hpp"
#include "rnnkit/kernels/cells/cell_kernel.hpp"
#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

// The two halves of the gate math over n units of one row, as Keras's _compute_carry_and_output
// splits it (the peephole LSTM adds its terms before each: peephole_lstm.hpp). z points at the
// units' i gate; the f, c and o gates follow, `units` apart.
// c_t = recurrent_activation(z_f) * c_{t-1} + recurrent_activation(z_i) * activation(z_c);
// c_out may alias c_in.
template <class T>
void lstm_carry(const CellSpec& spec, T* z, const T* c_in, T* c_out, Index n) {
  const Index units = spec.units;
  activate(spec.recurrent_activation, z, z, n);                  // i
  activate(spec.recurrent_activation, z + units, z + units, n);  // f
  activate(spec.activation, z + 2 * units, z + 2 * units, n);    // c candidate
  const ConstArrayMap<T> i(z, n), f(z + units, n), g(z + 2 * units, n);
  ArrayMap<T>(c_out, n) = f * ConstArrayMap<T>(c_in, n) + i * g;
}

// h_t = recurrent_activation(z_o) * activation(c_t).
template <class T>
void lstm_output(const CellSpec& spec, T* z, const T* c, T* h_out, Index n) {
  T* o = z + 3 * spec.units;
  activate(spec.recurrent_activation, o, o, n);
  activate(spec.activation, c, h_out, n);
  ArrayMap<T>(h_out, n) *= ConstArrayMap<T>(o, n);
}

// What the LSTM and its variants (peephole_lstm.hpp) share: the recurrent product of a step and
// of a split step's part. `Cell` adds the gate math: update(gates, rows, c_in, c_out,
// h_out, first, n) over units [first, first + n) of every row, c_out may alias c_in.
template <class T, class Cell>
class LSTMSteps : public CellKernel<T> {
 public:
  using CellKernel<T>::CellKernel;

  // gates: (rows, 4*units) contiguous, holding the input projection; overwritten.
  // states_out may alias states_in.
  void step(T* gates, Index rows, const T* const* states_in, T* const* states_out,
            T* /*scratch*/) const {
    const Index units = spec_.units;
    weights_.recurrent_kernel.multiply_add(states_in[0], units, rows, gates, 4 * units);
    cell().update(gates, rows, states_in[1], states_out[1], states_out[0], 0, units);
  }

  // One thread's share of a split step: `part`'s units of every gate, all rows. h_in is the
  // whole previous h; h_out and states[1] (c, updated in place) are written in part's units.
  void step_part(T* gates, Index rows, const T* h_in, T* h_out, T* const* states,
                 T* /*scratch*/, const Part& part) const {
    const Index units = spec_.units;
    multiply_part<true>(weights_.recurrent_kernel, 4, units, part, h_in, units, rows, gates,
                        4 * units);
    cell().update(gates, rows, states[1], states[1], h_out, part.first_unit, part.units);
  }

 protected:
  using CellKernel<T>::spec_;
  using CellKernel<T>::weights_;

  const Cell& cell() const { return static_cast<const Cell&>(*this); }
};

template <class T>
class LSTMKernel : public LSTMSteps<T, LSTMKernel<T>> {
 public:
  using LSTMSteps<T, LSTMKernel<T>>::LSTMSteps;

  // The gate math of units [first, first + n) of every row; c_out may alias c_in.
  void update(T* gates, Index rows, const T* c_in, T* c_out, T* h_out, Index first,
              Index n) const {
    const Index units = spec_.units, width = 4 * units;
    if constexpr (std::is_same_v<T, float>) {
      if (spec_.activation == Activation::Tanh &&
          spec_.recurrent_activation == Activation::Sigmoid) {
        for (Index r = 0; r < rows; ++r) {
          const Index at = r * units + first;
          fused_row(gates + r * width + first, c_in + at, c_out + at, h_out + at, n);
        }
        return;
      }
    }
    for (Index r = 0; r < rows; ++r) {
      T* z = gates + r * width + first;
      const Index at = r * units + first;
      lstm_carry(spec_, z, c_in + at, c_out + at, n);
      lstm_output(spec_, z, c_out + at, h_out + at, n);
    }
  }

 private:
  using LSTMSteps<T, LSTMKernel<T>>::spec_;

  // The default activations in one pass over n units of a row: each gate, c and h read or
  // written once. z points at the units' i gate; the others follow, `units` apart.
  void fused_row(const float* z, const float* c_in, float* c_out, float* h_out, Index n) const {
    const Index units = spec_.units;
    const float* const inputs[5] = {z, z + units, z + 2 * units, z + 3 * units, c_in};
    float* const outputs[2] = {c_out, h_out};
    for_each_packet(n, inputs, outputs, [](auto load, auto store) {
      using namespace Eigen::internal;
      const auto i = sigmoid_packet(load(0)), f = sigmoid_packet(load(1));
      const auto g = tanh_packet(load(2)), o = sigmoid_packet(load(3));
      const auto c = padd(pmul(f, load(4)), pmul(i, g));
      store(0, c);
      store(1, pmul(o, tanh_packet(c)));
    });
  }
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
