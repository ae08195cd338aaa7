// Keras 3 activations over a contiguous block, vectorised by Eigen's array functions.
//
// One switch per block, never per element. Formulas follow keras/src/backend/numpy/nn.py
// (the functions that `keras.activations.get(name)` resolves to):
//   sigmoid      1 / (1 + exp(-x))
//   hard_sigmoid clip(x / 6 + 0.5, 0, 1)           (Keras 3; tf.keras 2 used 0.2 x + 0.5)
//   elu          x >= 0 ? x : expm1(x)              (alpha = 1)
//   selu         scale * (x >= 0 ? x : alpha * expm1(x))
//   softplus     log(exp(x) + 1), computed as max(x, 0) + log1p(exp(-|x|))
//   softsign     x / (1 + |x|)
//   swish/silu   x * sigmoid(x)
//   gelu         0.5 x (1 + erf(x / sqrt(2)))      ("gelu" by name is the exact form)
//   hard_silu    x * hard_sigmoid(x)
//   keras2_hard_sigmoid  clip(0.2 x + 0.5, 0, 1)  (Keras 2's hard_sigmoid, for Keras 2 files)
// NaN propagates through every one of them, as the NumPy formulas do.
#pragma once

#include <cmath>
#include <cstring>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "rnnkit/api.hpp"
#include "rnnkit/kernels/isa.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// out = activation(in) over n elements; in and out may be the same block.
template <class T>
void activate(Activation activation, const T* in, T* out, Index n) {
  const ConstArrayMap<T> x(in, n);
  ArrayMap<T> y(out, n);
  const T zero(0), one(1), half(0.5);
  switch (activation) {
    case Activation::Linear:
      if (in != out) y = x;
      break;
    case Activation::Tanh:
      y = x.tanh();
      break;
    case Activation::Sigmoid:
      y = x.logistic();
      break;
    case Activation::HardSigmoid:
      y = (x / T(6) + half).template max<Eigen::PropagateNaN>(zero).template min<Eigen::PropagateNaN>(one);
      break;
    case Activation::Keras2HardSigmoid:
      y = (x * T(0.2) + half).template max<Eigen::PropagateNaN>(zero).template min<Eigen::PropagateNaN>(one);
      break;
    case Activation::Relu:
      y = x.template max<Eigen::PropagateNaN>(zero);
      break;
    case Activation::Elu:
      y = (x >= zero).select(x, x.expm1());
      break;
    case Activation::Selu: {
      const T alpha(1.6732632423543772848170429916717);
      const T scale(1.0507009873554804934193349852946);
      y = scale * (x >= zero).select(x, alpha * x.expm1());
      break;
    }
    case Activation::Softsign:
      y = x / (one + x.abs());
      break;
    case Activation::Softplus:
      y = x.template max<Eigen::PropagateNaN>(zero) + (-x.abs()).exp().log1p();
      break;
    case Activation::Swish:
      y = x * x.logistic();
      break;
    case Activation::Gelu:
      y = half * x * (one + (x * T(0.70710678118654752440084436210485)).erf());
      break;
    case Activation::Exponential:
      // std::exp, not Eigen's vectorised exp: that one returns inf from x ~ 88.38 on, where
      // float32 exp is still finite up to x ~ 88.72 (seen with AVX-512).
      y = x.unaryExpr([](T v) { return std::exp(v); });
      break;
    case Activation::HardSilu:
      y = x * (x / T(6) + half).template max<Eigen::PropagateNaN>(zero).template min<Eigen::PropagateNaN>(one);
      break;
  }
}

// The default gate activations on one packet of float, the same functions (and so the same
// numbers) that activate() applies through Eigen's array expressions.
template <class Packet>
Packet sigmoid_packet(const Packet& x) {
  return Eigen::internal::scalar_logistic_op<float>().packetOp(x);
}
template <class Packet>
Packet tanh_packet(const Packet& x) {
  return Eigen::internal::ptanh(x);
}

// Runs lanes(offset, inputs..., outputs...) over [0, n) one packet of float at a time: the
// fused gate math of a row in one pass. The last, partial packet goes through zero-padded copies
// so that every element takes the same code. `inputs` and `outputs` are arrays of pointers.
template <int Inputs, int Outputs, class Lanes>
void for_each_packet(Index n, const float* const (&inputs)[Inputs], float* const (&outputs)[Outputs],
                     Lanes lanes) {
  using Packet = typename Eigen::internal::packet_traits<float>::type;
  constexpr Index kLanes = Eigen::internal::packet_traits<float>::size;
  Index j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    lanes([&](int k) { return Eigen::internal::ploadu<Packet>(inputs[k] + j); },
          [&](int k, const Packet& v) { Eigen::internal::pstoreu(outputs[k] + j, v); });
  }
  if (j == n) return;
  const Index rest = n - j;
  alignas(64) float in[Inputs][kLanes] = {};
  alignas(64) float out[Outputs][kLanes];
  for (int k = 0; k < Inputs; ++k) std::memcpy(in[k], inputs[k] + j, sizeof(float) * rest);
  lanes([&](int k) { return Eigen::internal::pload<Packet>(in[k]); },
        [&](int k, const Packet& v) { Eigen::internal::pstore(out[k], v); });
  for (int k = 0; k < Outputs; ++k) std::memcpy(outputs[k] + j, out[k], sizeof(float) * rest);
}

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
