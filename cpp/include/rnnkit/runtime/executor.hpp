// Runs a kernel over a sequence the fast way: batch rows split across rnnkit's thread pool when
// the work is large enough to pay for it, or, when the rows are too few to share out, every
// step's columns split between threads; working memory supplied by the caller (so it can be
// reused across calls). Eigen-free: kernels are reached through a variant's function table.
#pragma once

#include <cstddef>
#include <mutex>

#include "rnnkit/api.hpp"

namespace rnnkit {

// A 64-byte aligned block of bytes, freed on destruction. Throws std::bad_alloc.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  void* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// Working memory kept between calls. One call at a time uses it; a concurrent call (another
// Python thread on the same layer) gets a private block instead of waiting.
class WorkspaceCache {
 public:
  class Lease {
   public:
    Lease(WorkspaceCache& cache, std::size_t bytes);
    void* data() const { return data_; }

   private:
    std::unique_lock<std::mutex> lock_;
    AlignedBuffer private_;
    void* data_ = nullptr;
  };

 private:
  std::mutex mutex_;
  AlignedBuffer buffer_;
};

// How one run splits its batch rows, and where each slice's working memory starts; or, with
// split_parts >= 2, how many threads share every step's columns (one slice of all rows).
struct Slices {
  static constexpr Index kMax = 64;
  int split_parts = 0;
  Index count = 1;
  Index first[kMax + 1] = {};
  std::size_t offset[kMax + 1] = {};
  std::size_t bytes() const { return offset[count]; }
};

// Rounds up to the 64-byte alignment every workspace block keeps.
std::size_t aligned_size(std::size_t bytes);

// Flops of a run's input and recurrent products (the rest is small next to them): the estimate
// that decides how a run is threaded and whether a call releases the GIL.
double sequence_flops(const CellSpec& spec, Index batch, Index steps);

template <class T>
Slices plan_slices(const KernelFunctions<T>& functions, const void* kernel, const CellSpec& spec,
                   Index batch, Index steps, Index chunk_steps, bool has_mask);

// Runs kernel (made by `functions`' variant) over io; workspace holds slices.bytes().
template <class T>
void execute(const KernelFunctions<T>& functions, const void* kernel, const CellSpec& spec,
             const SequenceIO<T>& io, const Slices& slices, void* workspace);

}  // namespace rnnkit
