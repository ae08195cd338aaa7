// Every kernel, compiled once per SIMD level (CMake builds this file with -march=x86-64, -v3,
// -v4 and RNNKIT_ISA set to match). Eigen's namespace is renamed per level: otherwise the linker
// merges identical Eigen template instances across levels and the baseline path can end up
// running AVX-512 code. Nothing but the plain data of api.hpp leaves this file.
#ifndef RNNKIT_ISA
#error "RNNKIT_ISA must name the SIMD level this file is compiled for"
#endif
#define RNNKIT_CAT2(a, b) a##b
#define RNNKIT_CAT(a, b) RNNKIT_CAT2(a, b)
#define Eigen RNNKIT_CAT(Eigen_, RNNKIT_ISA)
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE  // rnnkit threads over batch rows itself, never inside Eigen
#endif

#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include "rnnkit/api.hpp"
#include "rnnkit/kernels/cells/gru.hpp"
#include "rnnkit/kernels/cells/lstm.hpp"
#include "rnnkit/kernels/cells/peephole_lstm.hpp"
#include "rnnkit/kernels/cells/simple_rnn.hpp"
#include "rnnkit/kernels/sequence.hpp"
#include "rnnkit/runtime/step_barrier.hpp"  // split runs pass the runtime's barrier

namespace rnnkit {
inline namespace RNNKIT_ISA {
namespace {

// A kernel of any built-in cell behind one opaque pointer.
template <class T>
struct AnyKernel {
  virtual ~AnyKernel() = default;
  virtual void run(const SequenceIO<T>& io, T* workspace) const = 0;
  virtual std::size_t workspace_bytes(Index batch, Index steps, Index chunk, bool mask) const = 0;
  virtual Index split_limit() const = 0;
  virtual std::size_t split_workspace_bytes(Index batch, Index steps, Index chunk,
                                            int parts) const = 0;
  virtual void run_part(const SequenceIO<T>& io, T* workspace, int part, int parts,
                        StepBarrier& barrier) const = 0;
};

template <class Kernel>
struct KernelHolder final : AnyKernel<typename Kernel::Scalar> {
  using T = typename Kernel::Scalar;
  template <class... Args>
  explicit KernelHolder(Args&&... args) : kernel(args...) {}
  void run(const SequenceIO<T>& io, T* workspace) const override {
    run_sequence(kernel, io, workspace);
  }
  std::size_t workspace_bytes(Index batch, Index steps, Index chunk, bool mask) const override {
    return sizeof(T) * workspace_elements(kernel, batch, steps, chunk, mask);
  }
  Index split_limit() const override { return kernel.split_limit(); }
  std::size_t split_workspace_bytes(Index batch, Index steps, Index chunk,
                                    int parts) const override {
    return sizeof(T) * split_workspace_elements(kernel, batch, steps, chunk, parts);
  }
  void run_part(const SequenceIO<T>& io, T* workspace, int part, int parts,
                StepBarrier& barrier) const override {
    run_sequence_part(kernel, io, workspace, part, parts, barrier);
  }
  Kernel kernel;
};

template <class T>
void* create(const CellSpec& spec, const T* const* weights, Index count) {
  if (count != weight_count(spec)) throw std::invalid_argument("rnnkit: wrong number of weights");
  switch (spec.cell) {
    case CellType::SimpleRNN:
      return new KernelHolder<SimpleRNNKernel<T>>(spec, weights);
    case CellType::LSTM:
      return new KernelHolder<LSTMKernel<T>>(spec, weights);
    case CellType::GRU:
      return new KernelHolder<GRUKernel<T>>(spec, weights);
    case CellType::PeepholeLSTM:
      return new KernelHolder<PeepholeLSTMKernel<T>>(spec, weights);
  }
  throw std::invalid_argument("rnnkit: unknown cell type");
}

template <class T>
void destroy(void* kernel) {
  delete static_cast<AnyKernel<T>*>(kernel);
}

// Denormals flushed to zero while a kernel runs (docs/reliability.md): DAZ reads denormal inputs
// as zero, FTZ writes zero for a denormal result. Without it, a sequence whose values decay into
// the denormal range runs ~40x slower on x86 (microcode assists on every operation). The calling
// thread's own MXCSR is restored on return, so NumPy and the rest of the process keep IEEE
// gradual underflow. Other architectures keep their default (IEEE) behaviour.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bit 15 (FTZ) | bit 6 (DAZ)
  unsigned saved_;
#endif
};

template <class T>
void run(const void* kernel, const SequenceIO<T>& io, void* workspace) {
  FlushDenormals flush;  // per call and per thread: pool workers run this too
  static_cast<const AnyKernel<T>*>(kernel)->run(io, static_cast<T*>(workspace));
}

template <class T>
std::size_t workspace_bytes(const void* kernel, Index batch, Index steps, Index chunk, bool mask) {
  return static_cast<const AnyKernel<T>*>(kernel)->workspace_bytes(batch, steps, chunk, mask);
}

template <class T>
Index split_limit(const void* kernel) {
  return static_cast<const AnyKernel<T>*>(kernel)->split_limit();
}

template <class T>
std::size_t split_workspace_bytes(const void* kernel, Index batch, Index steps, Index chunk,
                                  int parts) {
  return static_cast<const AnyKernel<T>*>(kernel)->split_workspace_bytes(batch, steps, chunk,
                                                                         parts);
}

template <class T>
void run_part(const void* kernel, const SequenceIO<T>& io, void* workspace, int part, int parts,
              StepBarrier& barrier) {
  FlushDenormals flush;
  static_cast<const AnyKernel<T>*>(kernel)->run_part(io, static_cast<T*>(workspace), part, parts,
                                                     barrier);
}

template <class T>
constexpr KernelFunctions<T> functions() {
  return {&create<T>,      &destroy<T>,  &run<T>, &workspace_bytes<T>, &split_limit<T>,
          &split_workspace_bytes<T>, &run_part<T>};
}

}  // namespace
}  // namespace RNNKIT_ISA

#define RNNKIT_STR2(x) #x
#define RNNKIT_STR(x) RNNKIT_STR2(x)
extern const KernelTable RNNKIT_CAT(kernel_table_, RNNKIT_ISA) = {
    RNNKIT_STR(RNNKIT_ISA), RNNKIT_ISA::functions<float>(), RNNKIT_ISA::functions<double>()};

}  // namespace rnnkit
