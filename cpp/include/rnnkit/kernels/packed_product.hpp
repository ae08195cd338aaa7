// The recurrent product of every step, c (rows x n) += a (rows x k) · W (k x n), with W packed
// once (when the weights are set) into column panels that the register-blocked kernels below
// stream straight through. Eigen's own product repacks W on every call, which at small batch
// costs about as much as the multiply.
//
// Layout: panel p holds columns [p*kPanel, (p+1)*kPanel) of W, row after row (k x kPanel,
// contiguous, zero-padded past n). A panel is four 64-byte packets wide with AVX-512 (64 floats
// or 32 doubles), two packets with narrower ones (16 floats with AVX2, 8 with SSE). Packets are
// Eigen's for the SIMD level this translation unit is compiled for, so one source serves all.
//
// Storage: T itself, or Eigen::bfloat16 (opt-in, float32 only): half the bytes to stream, each
// weight rounded to 8 significant bits, widened back to T in registers; the arithmetic stays T.
//
// Kernels: rows >= 2 go in blocks of at most kMaxRows rows (sizes balanced, so no block is much
// smaller than the others), each row's accumulators for one panel held in registers; tall
// products (a chunk of steps' input projections) in groups of kTallRowGroup rows, so that a group's
// part of `a` stays in L2 while every panel goes past it. One row (batch 1: a matrix-vector
// product bound by the cache holding W) streams one panel at a time, or several when a panel
// alone does not give the kernel enough independent accumulators.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "rnnkit/api.hpp"
#include "rnnkit/kernels/isa.hpp"

namespace rnnkit {
inline namespace RNNKIT_ISA {

// Fully unrolls the loop that follows (its trip count is a compile-time constant).
#if defined(__clang__)
#define RNNKIT_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define RNNKIT_UNROLL _Pragma("GCC unroll 32")
#else
#define RNNKIT_UNROLL
#endif

// A hint that the cache line at p will be read soon: fetch it into L2. Never faults.
inline void prefetch_to_l2(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 2);
#else
  (void)p;
#endif
}

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
  // Packets per panel row. With 32 AVX-512 registers, 6 rows x 4 packets of accumulators plus
  // the weights in flight fit, and one 256-byte row of a panel per step of the loop streams
  // from L2 faster than two 128-byte ones (bench/README.md, "Design measurements"); 16
  // registers (AVX2, SSE) hold 6 rows x 2 packets.
  static constexpr int kPanelPackets = kPacket * sizeof(T) >= 64 ? 4 : 2;
  static constexpr Index kPanel = kPanelPackets * kPacket;  // columns per panel
  static constexpr int kMaxRows = 6;  // rows per register block
  // Rows of W per pass: a panel slice of 128 rows is 32 KiB (AVX-512), inside L1 (48 KiB).
  static constexpr Index kDepthBlock = 128;
  // Rows of `a` per group in tall products: 240 rows x 128 floats is 120 KiB, kept in L2.
  static constexpr Index kTallRowGroup = 240;

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
  static constexpr Index kCacheLine = 64;

  const Storage* panel(Index p) const { return packed_.data() + p * kPanel * depth_; }
  // Bytes of the slice of a panel that starts `rows_left` rows before its end.
  static Index slice_bytes(Index rows_left) {
    return std::min(kDepthBlock, rows_left) * kPanel * static_cast<Index>(sizeof(Storage));
  }

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
    for (Index r0 = 0; r0 < rows; r0 += kTallRowGroup) {
      const Index group = std::min(kTallRowGroup, rows - r0);
      row_group<Accumulate>(a + r0 * lda, lda, group, c + r0 * ldc, ldc, first_panel, end_panel);
    }
  }

  // Rows [0, rows) of a tall product, rows <= kTallRowGroup: blocks of `base` rows, the first
  // `longer` of them one row more.
  template <bool Accumulate>
  void row_group(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel,
                 Index end_panel) const {
    const Index blocks = (rows + kMaxRows - 1) / kMaxRows;
    const Index base = rows / blocks, longer = rows % blocks;
    for (Index p = first_panel; p < end_panel; ++p) {
      const Index width = std::min(kPanel, cols_ - p * kPanel);
      const T* bias = bias_.data() + p * kPanel;
      for (Index k0 = 0; k0 < depth_; k0 += kDepthBlock) {
        const Index depth = std::min(kDepthBlock, depth_ - k0);
        const Storage* w = panel(p) + k0 * kPanel;
        const bool first = !Accumulate && k0 == 0;  // the first pass sets c = bias + a · W
        // The next slice is prefetched into L2, a line per step of the loop, while this one
        // runs: weights beyond L2 (LSTM with 512 units: 6 MiB) then arrive from L3 spread over
        // the whole slice instead of all at once when it starts (bench/README.md, "Design
        // measurements").
        const char* next = nullptr;
        const char* next_end = nullptr;
        if (k0 + kDepthBlock < depth_) {
          next = reinterpret_cast<const char*>(w + depth * kPanel);
          next_end = next + slice_bytes(depth_ - k0 - kDepthBlock);
        } else if (p + 1 < end_panel) {
          next = reinterpret_cast<const char*>(panel(p + 1));
          next_end = next + slice_bytes(depth_);
        }
        Index r = 0;
        for (Index b = 0; b < blocks; ++b) {
          const Index n = base + (b < longer ? 1 : 0);
          T* tile = c + r * ldc + p * kPanel;
          if (first) {
            next = rows_block<false>(n, a + r * lda + k0, lda, w, depth, tile, ldc, width, bias,
                                     next, next_end);
          } else {
            next = rows_block<true>(n, a + r * lda + k0, lda, w, depth, tile, ldc, width, bias,
                                    next, next_end);
          }
          r += n;
        }
      }
    }
  }

  // Adds one packet of accumulators into c (or stores it): columns [i * kPacket, ...) of a
  // panel that has `width` columns.
  template <bool Accumulate>
  static void store_packet(T* c, int i, const Packet& acc, Index width) {
    using namespace Eigen::internal;
    T* at = c + i * kPacket;
    const Index n = std::min<Index>(kPacket, width - i * kPacket);
    if (n == kPacket) {
      if constexpr (Accumulate) {
        pstoreu(at, padd(ploadu<Packet>(at), acc));
      } else {
        pstoreu(at, acc);
      }
      return;
    }
    alignas(64) T lanes[kPacket];
    pstore(lanes, acc);
    for (Index j = 0; j < n; ++j) at[j] = Accumulate ? at[j] + lanes[j] : lanes[j];
  }

  // The accumulator of packet i starts at zero, or at the bias when c is being set rather than
  // added to.
  template <bool Accumulate>
  static Packet start_packet(const T* bias, int i) {
    using namespace Eigen::internal;
    if constexpr (Accumulate) {
      return pset1<Packet>(T(0));
    } else {
      return pload<Packet>(bias + i * kPacket);
    }
  }

  // c (Rows x width) += a (Rows x depth) · w (depth x kPanel, one panel slice), prefetching
  // the lines [next, next_end) one per row of w; returns where the prefetching stopped.
  // The accumulators are one flat array indexed only by unrolled constants, so that compilers
  // keep them in registers whatever the calling context (GCC kept a nested array on the stack
  // in some inlinings: 3x slower).
  template <int Rows, bool Accumulate>
  static const char* block(const T* a, Index lda, const Storage* w, Index depth, T* c,
                           Index ldc, Index width, const T* bias, const char* next,
                           const char* next_end) {
    using namespace Eigen::internal;
    constexpr int kAccumulators = Rows * kPanelPackets;
    Packet acc[kAccumulators];
    RNNKIT_UNROLL
    for (int j = 0; j < kAccumulators; ++j) {
      acc[j] = start_packet<Accumulate>(bias, j % kPanelPackets);
    }
    for (Index k = 0; k < depth; ++k, w += kPanel) {
      if (next < next_end) {
        prefetch_to_l2(next);
        next += kCacheLine;
      }
      Packet weights[kPanelPackets];
      RNNKIT_UNROLL
      for (int i = 0; i < kPanelPackets; ++i) weights[i] = load(w + i * kPacket);
      RNNKIT_UNROLL
      for (int r = 0; r < Rows; ++r) {
        const Packet x = pset1<Packet>(a[r * lda + k]);
        RNNKIT_UNROLL
        for (int i = 0; i < kPanelPackets; ++i) {
          acc[r * kPanelPackets + i] = pmadd(x, weights[i], acc[r * kPanelPackets + i]);
        }
      }
    }
    RNNKIT_UNROLL
    for (int j = 0; j < kAccumulators; ++j) {
      store_packet<Accumulate>(c + (j / kPanelPackets) * ldc, j % kPanelPackets, acc[j], width);
    }
    return next;
  }

  template <bool Accumulate, int Rows = kMaxRows>
  static const char* rows_block(Index rows, const T* a, Index lda, const Storage* w, Index depth,
                                T* c, Index ldc, Index width, const T* bias, const char* next,
                                const char* next_end) {
    if constexpr (Rows >= 1) {
      if (rows == Rows) {
        return block<Rows, Accumulate>(a, lda, w, depth, c, ldc, width, bias, next, next_end);
      }
      return rows_block<Accumulate, Rows - 1>(rows, a, lda, w, depth, c, ldc, width, bias, next,
                                              next_end);
    }
    return next;
  }

  // One row (a matrix-vector product, bound by the cache that holds W), kGroup panels per pass:
  // one AVX-512 panel of float weights (its four accumulators keep up with L2, one sequential
  // stream); two of bfloat16 weights and four with narrower packets, for the eight independent
  // accumulators that their widening, or the FMA latency, needs.
  template <bool Accumulate>
  void single_row(const T* a, T* c, Index first_panel, Index end_panel) const {
    using namespace Eigen::internal;
    constexpr Index kGroup =
        kPanelPackets == 2 ? 4 : std::is_same_v<Storage, T> ? 1 : 2;
    Index p = first_panel;
    for (; p + kGroup <= end_panel; p += kGroup) {
      single_row_panels<Accumulate, static_cast<int>(kGroup)>(p, a, c);
    }
    for (; p < end_panel; ++p) single_row_panels<Accumulate, 1>(p, a, c);
  }

  // Panels [p, p + Group) of one row; accumulators flat, as in block().
  template <bool Accumulate, int Group>
  void single_row_panels(Index p, const T* a, T* c) const {
    using namespace Eigen::internal;
    constexpr int kAccumulators = Group * kPanelPackets;
    const Storage* w = panel(p);
    const T* bias = bias_.data() + p * kPanel;
    Packet acc[kAccumulators];
    RNNKIT_UNROLL
    for (int j = 0; j < kAccumulators; ++j) {
      acc[j] = start_packet<Accumulate>(bias + (j / kPanelPackets) * kPanel, j % kPanelPackets);
    }
    const Index panel_size = kPanel * depth_;
    for (Index k = 0; k < depth_; ++k) {
      const Packet x = pset1<Packet>(a[k]);
      RNNKIT_UNROLL
      for (int j = 0; j < kAccumulators; ++j) {
        const Storage* row = w + (j / kPanelPackets) * panel_size + k * kPanel;
        acc[j] = pmadd(x, load(row + (j % kPanelPackets) * kPacket), acc[j]);
      }
    }
    RNNKIT_UNROLL
    for (int j = 0; j < kAccumulators; ++j) {
      const Index first = (p + j / kPanelPackets) * kPanel;
      store_packet<Accumulate>(c + first, j % kPanelPackets, acc[j],
                               std::min(kPanel, cols_ - first));
    }
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
      bf16_matrix_ = PackedMatrix<T, Eigen::bfloat16>(data, rows, stride, first_col, cols, bias);
    } else {
      f32_matrix_ = PackedMatrix<T>(data, rows, stride, first_col, cols, bias);
    }
  }
  // c += a · W (panels [first_panel, end_panel) only; -1: to the last)
  void multiply_add(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                    Index end_panel = -1) const {
    if (bf16_) {
      bf16_matrix_.multiply_add(a, lda, rows, c, ldc, first_panel, end_panel);
    } else {
      f32_matrix_.multiply_add(a, lda, rows, c, ldc, first_panel, end_panel);
    }
  }
  // c = a · W + bias (panels [first_panel, end_panel) only)
  void multiply(const T* a, Index lda, Index rows, T* c, Index ldc, Index first_panel = 0,
                Index end_panel = -1) const {
    if (bf16_) {
      bf16_matrix_.multiply(a, lda, rows, c, ldc, first_panel, end_panel);
    } else {
      f32_matrix_.multiply(a, lda, rows, c, ldc, first_panel, end_panel);
    }
  }
  // Columns per panel (the same for both storages).
  static constexpr Index panel_width() { return PackedMatrix<T>::kPanel; }
  Index depth() const { return bf16_ ? bf16_matrix_.depth() : f32_matrix_.depth(); }
  Index cols() const { return bf16_ ? bf16_matrix_.cols() : f32_matrix_.cols(); }

 private:
  bool bf16_ = false;
  PackedMatrix<T> f32_matrix_;
  PackedMatrix<T, Eigen::bfloat16> bf16_matrix_;
};

}  // namespace RNNKIT_ISA
}  // namespace rnnkit
