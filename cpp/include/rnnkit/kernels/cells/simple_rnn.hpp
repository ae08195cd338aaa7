// SimpleRNN: one gate, one state. Reproduces keras.layers.SimpleRNNCell.call
// (keras/src/layers/rnn/simple_rnn.py):
//   h_t = activation(x_t · kernel + bias + h_{t-1} · recurrent_kernel)
// The driver has already put x_t · kernel + bias into `gates`.
#pragma once

#include "rnnkit/kernels/activations.hpp"
#include "rnnkit/kernels/cells/cell_kernel.hpp"
#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
class SimpleRNNKernel : public CellKernel<T> {
 public:
  using CellKernel<T>::CellKernel;

  // gates: (rows, units) contiguous, holding the input projection. states_out may alias states_in.
  void step(T* gates, Index rows, const T* const* states_in, T* const* states_out,
            T* /*scratch*/) const {
    const Index units = spec_.units;
    weights_.recurrent_kernel.multiply_add(states_in[0], units, rows, gates, units);
    activate(spec_.activation, gates, states_out[0], rows * units);
  }

  // One thread's share of a split step: `part`'s units, all rows; h_out written there only.
  void step_part(T* gates, Index rows, const T* h_in, T* h_out, T* const* /*states*/,
                 T* /*scratch*/, const Part& part) const {
    const Index units = spec_.units, first = part.first_unit;
    multiply_part<true>(weights_.recurrent_kernel, 1, units, part, h_in, units, rows, gates, units);
    for (Index r = 0; r < rows; ++r) {
      activate(spec_.activation, gates + r * units + first, h_out + r * units + first, part.units);
    }
  }

 private:
  using CellKernel<T>::spec_;
  using CellKernel<T>::weights_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
