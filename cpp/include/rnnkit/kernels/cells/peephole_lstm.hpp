// Peephole LSTM: gates i, f, c, o; states h, c. Reproduces tf.keras 2's
// keras.experimental.PeepholeLSTMCell (_compute_carry_and_output_fused):
//   z = x_t · kernel + bias + h_{t-1} · recurrent_kernel,   z = [z_i | z_f | z_c | z_o]
//   i = recurrent_activation(z_i + p_i * c_{t-1})   f = recurrent_activation(z_f + p_f * c_{t-1})
//   c_t = f * c_{t-1} + i * activation(z_c)
//   o = recurrent_activation(z_o + p_o * c_t)       h_t = o * activation(c_t)
// p_i, p_f, p_o are the input_gate_, forget_gate_ and output_gate_peephole_weights, (units,)
// each, last in get_weights() (ONNX LSTM's P input is [p_i, p_o, p_f]). The steps and the carry
// and output halves of the gate math are the LSTM's (lstm.hpp): the peepholes add their terms
// before each half.
#pragma once

#include <type_traits>

#include "rnnkit/kernels/activations.hpp"
#include "rnnkit/kernels/cells/lstm.hpp"
#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
class PeepholeLSTMKernel : public LSTMSteps<T, PeepholeLSTMKernel<T>> {
 public:
  PeepholeLSTMKernel(const CellSpec& spec, const T* const* weights)
      : LSTMSteps<T, PeepholeLSTMKernel<T>>(spec, weights), peepholes_(3 * spec.units) {
    const Index units = spec.units;
    for (Index k = 0; k < 3; ++k) {  // rounded like every other weight: all paths agree
      const T* p = weights[first_extra_weight(spec) + k];
      for (Index j = 0; j < units; ++j) {
        peepholes_[k * units + j] = spec.bf16_weights ? round_to_bf16(p[j]) : p[j];
      }
    }
  }

  // The gate math of units [first, first + n) of every row; c_out may alias c_in.
  void update(T* gates, Index rows, const T* c_in, T* c_out, T* h_out, Index first,
              Index n) const {
    const Index units = spec_.units, width = 4 * units;
    const T* p = peepholes_.data() + first;  // p_i; p_f and p_o follow, `units` apart
    if constexpr (std::is_same_v<T, float>) {
      if (spec_.activation == Activation::Tanh &&
          spec_.recurrent_activation == Activation::Sigmoid) {
        for (Index r = 0; r < rows; ++r) {
          const Index at = r * units + first;
          fused_row(gates + r * width + first, c_in + at, p, c_out + at, h_out + at, n);
        }
        return;
      }
    }
    const ConstArrayMap<T> p_i(p, n), p_f(p + units, n), p_o(p + 2 * units, n);
    for (Index r = 0; r < rows; ++r) {
      T* z = gates + r * width + first;
      const Index at = r * units + first;
      const ConstArrayMap<T> c_prev(c_in + at, n);
      ArrayMap<T>(z, n) += p_i * c_prev;
      ArrayMap<T>(z + units, n) += p_f * c_prev;
      lstm_carry(spec_, z, c_in + at, c_out + at, n);
      ArrayMap<T>(z + 3 * units, n) += p_o * ConstArrayMap<T>(c_out + at, n);
      lstm_output(spec_, z, c_out + at, h_out + at, n);
    }
  }

 private:
  using LSTMSteps<T, PeepholeLSTMKernel<T>>::spec_;

  // The default activations in one pass over n units of a row, as LSTMKernel::fused_row.
  void fused_row(const float* z, const float* c_in, const float* p, float* c_out, float* h_out,
                 Index n) const {
    const Index units = spec_.units;
    const float* const inputs[8] = {z,    z + units, z + 2 * units, z + 3 * units,
                                    c_in, p,         p + units,     p + 2 * units};
    float* const outputs[2] = {c_out, h_out};
    for_each_packet(n, inputs, outputs, [](auto load, auto store) {
      using namespace Eigen::internal;
      const auto c_prev = load(4);
      const auto i = sigmoid_packet(padd(load(0), pmul(load(5), c_prev)));
      const auto f = sigmoid_packet(padd(load(1), pmul(load(6), c_prev)));
      const auto c = padd(pmul(f, c_prev), pmul(i, tanh_packet(load(2))));
      const auto o = sigmoid_packet(padd(load(3), pmul(load(7), c)));
      store(0, c);
      store(1, pmul(o, tanh_packet(c)));
    });
  }

  RowVector<T> peepholes_;  // p_i | p_f | p_o (Eigen storage, renamed per SIMD level: isa.hpp)
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
