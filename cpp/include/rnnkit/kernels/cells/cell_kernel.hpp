// What every built-in cell kernel has: its spec and its packed weights, with the defaults of
// the kernel interface (sequence.hpp): no scratch memory, split steps over whole panels of
// units. A cell derives from it, adds step (and step_part), and replaces a default it differs
// from (the GRU's scratch and split limit).
#pragma once

#include "rnnkit/kernels/matrix.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T>
class CellKernel {
 public:
  using Scalar = T;

  // `extra`: what CellWeights takes besides the weight list (the GRU's recurrent bias).
  template <class... Extra>
  CellKernel(const CellSpec& spec, const T* const* weights, Extra... extra)
      : spec_(spec), weights_(spec, weights, extra...) {}

  const CellSpec& spec() const { return spec_; }
  const CellWeights<T>& weights() const { return weights_; }
  Index scratch_size(Index /*rows*/) const { return 0; }
  Index split_limit() const { return rnnkit::split_limit<T>(spec_.units); }

 protected:
  CellSpec spec_;
  CellWeights<T> weights_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
