// The recurrent product of every step, c (rows x n) += a (rows x k) · W (k x n), with W packed
// once (when the weights are set) into column panels that the register-blocked kernels below
// stream straight through. Eigen's own product repacks W on every call, which at small batch
// costs about as much as the multiply.
//
// Layout: panel p holds columns [p*kPanel, (p+1)*kPanel) of W, row after row (k x kPanel,
// contiguous, zero-padded past n). Packets are Eigen's for the SIMD level this translation unit
// is compiled for (16 floats with AVX-512, 8 with AVX2, 4 with SSE), so one source serves all.
//
// Storage: T itself, or Eigen::bfloat16 (opt-in, float32 only): half the bytes to stream, each
// weight rounded to 8 significant bits, widened back to T in registers; the arithmetic stays T.
//
// Kernels: rows >= 2 go kMaxRows rows at a time, each row's accumulators for one panel held in
// registers (kMaxRows x 2 packets); one row (batch 1: a matrix-vector product bound by the cache
// holding W) streams one panel at a time (AVX-512) or four (narrower packets).
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "rnnkit/api.hpp"
#include "rnnkit/isa.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

template <class T, class Storage = T>
class PackedMatrix {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr int kPacket = Eigen::internal::unpacket_traits<Packet>::size;
  using StoragePacket = typename Eigen::internal::packet_traits<Storage>::type;
  // The storage packs kPacket weights into one vector register of its own (bf16 with AVX2 or
  // AVX-512); otherwise (SSE) weights are widened one by one.
  static constexpr bool kVectorWiden =
      !std::is_same_v<Storage, T> &&
      Eigen::internal::unpacket_traits<StoragePacket>::size == kPacket;

  // kPacket weights from w as a packet of T.
  static Packet load(const Storage* w) {
    using namespace Eigen::internal;
    if constexpr (std::is_same_v<Storage, T>) {
      return pload<Packet>(w);
    } else if constexpr (kVectorWiden) {
      return pcast<StoragePacket, Packet>(ploadu<StoragePacket>(w));
    } else {
      alignas(64) T wide[kPacket];
      for (int i = 0; i < kPacket; ++i) wide[i] = static_cast<T>(static_cast<float>(w[i]));
      return pload<Packet>(wide);
    }
  }

 public:
  static constexpr Index kPanel = 2 * kPacket;  // columns per panel
  // Rows per block: 2 packets x kMaxRows accumulators plus the loads fit the register file.
  static constexpr int kMaxRows = kPacket >= 16 ? 12 : 6;
  // Rows of W per pass: a panel slice of 128 x kPanel is 16 KiB (AVX-512), well inside L1.
  static constexpr Index kDepthBlock = 128;

  PackedMatrix() = default;

  // Packs columns [first_col, first_col + cols) of the (rows x *) row-major matrix at `data`,
  // and `bias` (cols values, or none: zeros) for multiply().
  PackedMatrix(const T* data, Index rows, Index stride, Index first_col, Index cols,
               const T* bias = nullptr)
      : depth_(rows), cols_(cols), panels_((cols + kPanel - 1) / kPanel),
        packed_(static_cast<std::size_t>(panels_ * kPanel * rows)),  // zero-initialised
        bias_(static_cast<std::size_t>(panels_ * kPanel), T(0)) {
    if (bias != nullptr) std::memcpy(bias_.data(), bias, sizeof(T) * static_cast<std::size_t>(cols));
    for (Index p = 0; p < panels_; ++p) {
      const Index width = std::min(kPanel, cols - p * kPanel);
      Storage* panel = packed_.data() + p * kPanel * rows;
      for (Index r = 0; r < rows; ++r) {
        const T* source = data + r * stride + first_col + p * kPanel;
        for (Index j = 0; j < width; ++j) panel[r * kPanel + j] = static_cast<Storage>(source[j]);
      }
    }
  }

  Index depth() const { return depth_; }
  Index cols() const { return cols_; }

  // c (rows x cols, row stride ldc) += a (rows x depth, row stride lda) · W.
  // Panel by panel, kDepthBlock rows of W at a time: that slice of the panel stays in L1 while
  // every block of rows of `a` goes past it, so W is read from L2 (or L3) once per call.
  // Only panels [first_panel, end_panel) (columns first_panel * kPanel on; end_panel -1: all):
  // the share of one thread when a step's columns are split between threads.
  void multiply_add(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                    Index end_panel = -1) const {
    product<true>(a, lda, rows, c, ldc, first_panel, end_panel < 0 ? panels_ : end_panel);
  }

  // c (rows x cols, row stride ldc) = a · W + bias: c is only written, never read, so a step
  // needs no pass to clear it or add the bias.
  void multiply(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                Index end_panel = -1) const {
    product<false>(a, lda, rows, c, ldc, first_panel, end_panel < 0 ? panels_ : end_panel);
  }

 private:
  const Storage* panel(Index p) const { return packed_.data() + p * kPanel * depth_; }

  template <bool Accumulate>
  void product(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel,
               Index end_panel) const {
    if (!Accumulate && depth_ == 0) {
      const Index first = first_panel * kPanel;
      const Index n = std::min(end_panel * kPanel, cols_) - first;
      for (Index r = 0; r < rows; ++r) {
        std::memcpy(c + r * ldc + first, bias_.data() + first,
                    sizeof(T) * static_cast<std::size_t>(n));
      }
      return;
    }
    if (rows == 1) {
      single_row<Accumulate>(a, c, first_panel, end_panel);
      return;
    }
    for (Index p = first_panel; p < end_panel; ++p) {
      const Index width = std::min(kPanel, cols_ - p * kPanel);
      const T* bias = bias_.data() + p * kPanel;
      for (Index k0 = 0; k0 < depth_; k0 += kDepthBlock) {
        const Index depth = std::min(kDepthBlock, depth_ - k0);
        const Storage* w = panel(p) + k0 * kPanel;
        const bool first = !Accumulate && k0 == 0;  // the first pass sets c = bias + a · W
        Index r = 0;
        for (; r + kMaxRows <= rows; r += kMaxRows) {
          T* tile = c + r * ldc + p * kPanel;
          if (first) {
            block<kMaxRows, false>(a + r * lda + k0, lda, w, depth, tile, ldc, width, bias);
          } else {
            block<kMaxRows, true>(a + r * lda + k0, lda, w, depth, tile, ldc, width, bias);
          }
        }
        if (r < rows) {
          T* tile = c + r * ldc + p * kPanel;
          if (first) {
            remainder_rows<false>(rows - r, a + r * lda + k0, lda, w, depth, tile, ldc, width,
                                  bias);
          } else {
            remainder_rows<true>(rows - r, a + r * lda + k0, lda, w, depth, tile, ldc, width,
                                 bias);
          }
        }
      }
    }
  }

  // Adds one panel's accumulators into c (or stores them), only the columns that exist.
  template <bool Accumulate>
  static void store(T* c, const Packet& low, const Packet& high, Index width) {
    using Eigen::internal::ploadu;
    using Eigen::internal::pstoreu;
    using Eigen::internal::padd;
    if (width == kPanel) {
      if constexpr (Accumulate) {
        pstoreu(c, padd(ploadu<Packet>(c), low));
        pstoreu(c + kPacket, padd(ploadu<Packet>(c + kPacket), high));
      } else {
        pstoreu(c, low);
        pstoreu(c + kPacket, high);
      }
      return;
    }
    alignas(64) T lanes[kPanel];
    pstoreu(lanes, low);
    pstoreu(lanes + kPacket, high);
    for (Index j = 0; j < width; ++j) c[j] = Accumulate ? c[j] + lanes[j] : lanes[j];
  }

  // Accumulators start at zero, or at the bias when c is being set rather than added to.
  template <bool Accumulate>
  static void start(Packet& low, Packet& high, const T* bias) {
    using namespace Eigen::internal;
    if constexpr (Accumulate) {
      low = high = pset1<Packet>(T(0));
    } else {
      low = pload<Packet>(bias);
      high = pload<Packet>(bias + kPacket);
    }
  }

  // c (Rows x width) += a (Rows x depth) · w (depth x kPanel, one panel slice).
  template <int Rows, bool Accumulate>
  static void block(const T* a, Index lda, const Storage* w, Index depth, T* c, Index ldc,
                    Index width, const T* bias) {
    using namespace Eigen::internal;
    Packet acc[Rows][2];
    for (int r = 0; r < Rows; ++r) start<Accumulate>(acc[r][0], acc[r][1], bias);
    for (Index k = 0; k < depth; ++k, w += kPanel) {
      const Packet w0 = load(w), w1 = load(w + kPacket);
      for (int r = 0; r < Rows; ++r) {
        const Packet x = pset1<Packet>(a[r * lda + k]);
        acc[r][0] = pmadd(x, w0, acc[r][0]);
        acc[r][1] = pmadd(x, w1, acc[r][1]);
      }
    }
    for (int r = 0; r < Rows; ++r) store<Accumulate>(c + r * ldc, acc[r][0], acc[r][1], width);
  }

  template <bool Accumulate, int Rows = kMaxRows - 1>
  static void remainder_rows(Index rows, const T* a, Index lda, const Storage* w, Index depth, T* c,
                             Index ldc, Index width, const T* bias) {
    if constexpr (Rows >= 1) {
      if (rows == Rows) {
        block<Rows, Accumulate>(a, lda, w, depth, c, ldc, width, bias);
      } else {
        remainder_rows<Accumulate, Rows - 1>(rows, a, lda, w, depth, c, ldc, width, bias);
      }
    }
  }

  // One row (a matrix-vector product, bound by the cache that holds W). With 16-wide packets of
  // float weights, panel after panel, each one sequential stream: 1.3-1.4x the bandwidth from L2
  // and 1.5x from L1 of four panels per pass. Narrower packets, and bfloat16 weights (widened on
  // the fly), need the eight accumulators of four panels per pass to keep up (the other way is
  // 1.25x slower with SSE, level with AVX2, 8 % slower with bfloat16).
  template <bool Accumulate>
  void single_row(const T* a, T* c, Index first_panel, Index end_panel) const {
    using namespace Eigen::internal;
    constexpr Index kGroup = kPacket >= 16 && std::is_same_v<Storage, T> ? 1 : 4;
    Index p = first_panel;
    for (; kGroup > 1 && p + kGroup <= end_panel; p += kGroup) {
      const Storage* w[kGroup];
      Packet acc[kGroup][2];
      for (Index g = 0; g < kGroup; ++g) {
        w[g] = panel(p + g);
        start<Accumulate>(acc[g][0], acc[g][1], bias_.data() + (p + g) * kPanel);
      }
      for (Index k = 0; k < depth_; ++k) {
        const Packet x = pset1<Packet>(a[k]);
        for (Index g = 0; g < kGroup; ++g) {
          acc[g][0] = pmadd(x, load(w[g] + k * kPanel), acc[g][0]);
          acc[g][1] = pmadd(x, load(w[g] + k * kPanel + kPacket), acc[g][1]);
        }
      }
      for (Index g = 0; g < kGroup; ++g) {
        const Index first = (p + g) * kPanel;
        store<Accumulate>(c + first, acc[g][0], acc[g][1], std::min(kPanel, cols_ - first));
      }
    }
    for (; p < end_panel; ++p) block_single<Accumulate>(p, a, c);
  }

  template <bool Accumulate>
  void block_single(Index p, const T* a, T* c) const {
    using namespace Eigen::internal;
    const Storage* w = panel(p);
    Packet acc0, acc1, acc2 = pset1<Packet>(T(0)), acc3 = acc2;
    start<Accumulate>(acc0, acc1, bias_.data() + p * kPanel);
    Index k = 0;
    for (; k + 2 <= depth_; k += 2, w += 2 * kPanel) {  // two rows of W per pass: 4 chains
      const Packet x0 = pset1<Packet>(a[k]), x1 = pset1<Packet>(a[k + 1]);
      acc0 = pmadd(x0, load(w), acc0);
      acc1 = pmadd(x0, load(w + kPacket), acc1);
      acc2 = pmadd(x1, load(w + kPanel), acc2);
      acc3 = pmadd(x1, load(w + kPanel + kPacket), acc3);
    }
    for (; k < depth_; ++k, w += kPanel) {
      const Packet x = pset1<Packet>(a[k]);
      acc0 = pmadd(x, load(w), acc0);
      acc1 = pmadd(x, load(w + kPacket), acc1);
    }
    const Index first = p * kPanel;
    store<Accumulate>(c + first, padd(acc0, acc2), padd(acc1, acc3),
                      std::min(kPanel, cols_ - first));
  }

  Index depth_ = 0, cols_ = 0, panels_ = 0;
  std::vector<Storage, Eigen::aligned_allocator<Storage>> packed_;
  std::vector<T, Eigen::aligned_allocator<T>> bias_;  // padded to whole panels; kept as T
};

// Packed weights of either storage, chosen when the weights are set (CellSpec::bf16_weights).
template <class T>
class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(const T* data, Index rows, Index stride, Index first_col, Index cols, bool bf16,
                const T* bias = nullptr)
      : bf16_(bf16) {
    if (bf16) {
      half_ = PackedMatrix<T, Eigen::bfloat16>(data, rows, stride, first_col, cols, bias);
    } else {
      full_ = PackedMatrix<T>(data, rows, stride, first_col, cols, bias);
    }
  }
  // c += a · W (panels [first_panel, end_panel) only; -1: to the last)
  void multiply_add(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                    Index end_panel = -1) const {
    if (bf16_) {
      half_.multiply_add(a, lda, rows, c, ldc, first_panel, end_panel);
    } else {
      full_.multiply_add(a, lda, rows, c, ldc, first_panel, end_panel);
    }
  }
  // c = a · W + bias (panels [first_panel, end_panel) only)
  void multiply(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                Index end_panel = -1) const {
    if (bf16_) {
      half_.multiply(a, lda, rows, c, ldc, first_panel, end_panel);
    } else {
      full_.multiply(a, lda, rows, c, ldc, first_panel, end_panel);
    }
  }
  // Columns per panel (the same for both storages).
  static constexpr Index panel_width() { return PackedMatrix<T>::kPanel; }
  Index depth() const { return bf16_ ? half_.depth() : full_.depth(); }
  Index cols() const { return bf16_ ? half_.cols() : full_.cols(); }

 private:
  bool bf16_ = false;
  PackedMatrix<T> full_;
  PackedMatrix<T, Eigen::bfloat16> half_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
