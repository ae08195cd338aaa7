// SimpleRNN: one gate, one state. Reproduces keras.layers.SimpleRNNCell.call
// (keras/src/layers/rnn/simple_rnn.py):
//   h_t = activation(x_t · kernel + bias + h_{t-1} · recurrent_kernel)
// The driver has already put x_t · kernel + bias into `gates`.
#pragma once

#include "rnnkit/activations.hpp"
#include "rnnkit/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
class SimpleRNNKernel {
 public:
  using Scalar = T;

  SimpleRNNKernel(const CellSpec& spec, const T* kernel, const T* recurrent_kernel, const T* bias)
      : spec_(spec), weights_(spec, kernel, recurrent_kernel, spec.use_bias ? bias : nullptr) {}

  const CellSpec& spec() const { return spec_; }
  const CellWeights<T>& weights() const { return weights_; }
  Index scratch_size(Index /*rows*/) const { return 0; }

  // gates: (rows, units) contiguous, holding the input projection. states_out may alias states_in.
  void step(T* gates, Index rows, const T* const* states_in, T* const* states_out,
            T* /*scratch*/) const {
    const Index units = spec_.units;
    weights_.recurrent_kernel.multiply_add(states_in[0], units, rows, gates, units);
    activate(spec_.activation, gates, states_out[0], rows * units);
  }

 private:
  CellSpec spec_;
  CellWeights<T> weights_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
