#include "rnnkit/runtime/executor.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

#include "rnnkit/runtime/step_barrier.hpp"
#include "rnnkit/runtime/thread_pool.hpp"

namespace rnnkit {

namespace {

constexpr std::size_t kAlignment = 64;
// Below this many flops per slice, waking a worker costs more than it saves.
constexpr double kMinFlopsPerSlice = 4e6;
// Large batches run as slices of at most this many rows, each over the whole sequence, so that a
// slice's gates and states stay in L2 beside the weights (bench/README.md, "Design measurements").
constexpr Index kSliceRows = 64;
// Column splits (threads share each step, passing a barrier after it) for steps of at least this
// many flops, since each step pays for a barrier, when the rows are too few to share out
// (< kSplitRowsPerThread per thread); with more rows, splitting rows is faster (measured in
// bench/README.md, "Design measurements").
constexpr double kMinSplitStepFlops = 1e5;
constexpr Index kSplitRowsPerThread = 4;

// The rows [first, first + count) of io: every array is offset by whole batch rows.
template <class T>
SequenceIO<T> rows_of(const SequenceIO<T>& io, Index first, Index count, Index units) {
  SequenceIO<T> slice = io;
  slice.batch = count;
  slice.x = io.x + first * io.x_batch_stride;
  if (io.mask != nullptr) slice.mask = io.mask + first * io.mask_batch_stride;
  for (T*& state : slice.states) {
    if (state != nullptr) state += first * units;
  }
  if (io.out != nullptr) slice.out = io.out + first * io.out_batch_stride;
  if (io.last_output != nullptr) slice.last_output = io.last_output + first * units;
  return slice;
}

}  // namespace

AlignedBuffer::AlignedBuffer(std::size_t bytes) : size_(aligned_size(bytes)) {
  if (size_ == 0) return;
  data_ = std::aligned_alloc(kAlignment, size_);
  if (data_ == nullptr) throw std::bad_alloc();
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  return *this;
}

WorkspaceCache::Lease::Lease(WorkspaceCache& cache, std::size_t bytes)
    : lock_(cache.mutex_, std::try_to_lock) {
  if (!lock_.owns_lock()) {
    private_ = AlignedBuffer(bytes);
    data_ = private_.data();
    return;
  }
  if (cache.buffer_.size() < bytes) cache.buffer_ = AlignedBuffer(bytes);
  data_ = cache.buffer_.data();
}

std::size_t aligned_size(std::size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

double sequence_flops(const CellSpec& spec, Index batch, Index steps) {
  return 2.0 * batch * steps * (spec.input_dim + spec.units) * gate_count(spec.cell) * spec.units;
}

template <class T>
Slices plan_slices(const KernelFunctions<T>& functions, const void* kernel, const CellSpec& spec,
                   Index batch, Index steps, Index chunk_steps, bool has_mask) {
  const double flops = sequence_flops(spec, batch, steps);
  const Index by_work = static_cast<Index>(flops / kMinFlopsPerSlice);
  Slices slices;
  const Index parts = std::min<Index>(
      {ThreadPool::instance().threads(), by_work, functions.split_limit(kernel)});
  const double step_flops = flops / std::max<Index>(steps, 1);
  if (!has_mask && parts >= 2 && step_flops >= kMinSplitStepFlops &&
      batch < kSplitRowsPerThread * parts) {
    slices.split_parts = static_cast<int>(parts);
    // A run the pool cannot take at once falls back to one thread: room for either.
    slices.offset[1] = aligned_size(std::max(
        functions.split_workspace_bytes(kernel, batch, steps, chunk_steps, slices.split_parts),
        functions.workspace_bytes(kernel, batch, steps, chunk_steps, has_mask)));
    return slices;
  }
  const Index threads = std::max<Index>(
      1, std::min<Index>({ThreadPool::instance().threads(), batch, by_work, Slices::kMax}));
  // Groups of rows: a multiple of the thread count, so every thread gets as many.
  const Index groups = (batch + kSliceRows - 1) / kSliceRows;
  slices.count = std::min<Index>((groups + threads - 1) / threads * threads, Slices::kMax);
  slices.count = std::max(slices.count, threads);
  for (Index s = 0; s <= slices.count; ++s) slices.first[s] = batch * s / slices.count;
  for (Index s = 0; s < slices.count; ++s) {
    const std::size_t bytes = functions.workspace_bytes(
        kernel, slices.first[s + 1] - slices.first[s], steps, chunk_steps, has_mask);
    slices.offset[s + 1] = slices.offset[s] + aligned_size(bytes);
  }
  return slices;
}

template <class T>
void execute(const KernelFunctions<T>& functions, const void* kernel, const CellSpec& spec,
             const SequenceIO<T>& io, const Slices& slices, void* workspace) {
  char* base = static_cast<char*>(workspace);
  if (slices.split_parts >= 2) {
    const int parts = slices.split_parts;
    StepBarrier barrier(parts);
    const bool together = ThreadPool::instance().run_together(parts, [&](int part) {
      try {
        ThreadPool::fault_point();
        functions.run_part(kernel, io, base, part, parts, barrier);
      } catch (...) {
        barrier.abort();  // the other parts stop at their next barrier instead of waiting
        throw;
      }
    });
    if (!together) functions.run(kernel, io, base);  // the pool is busy: this thread alone
    return;
  }
  if (slices.count == 1) {
    functions.run(kernel, io, base);
    return;
  }
  ThreadPool::instance().run(static_cast<int>(slices.count), [&](int s) {
    ThreadPool::fault_point();
    const Index first = slices.first[s], rows = slices.first[s + 1] - first;
    functions.run(kernel, rows_of(io, first, rows, spec.units), base + slices.offset[s]);
  });
}

#define RNNKIT_INSTANTIATE(T)                                                                 \
  template Slices plan_slices<T>(const KernelFunctions<T>&, const void*, const CellSpec&,     \
                                 Index, Index, Index, bool);                                   \
  template void execute<T>(const KernelFunctions<T>&, const void*, const CellSpec&,           \
                           const SequenceIO<T>&, const Slices&, void*);
RNNKIT_INSTANTIATE(float)
RNNKIT_INSTANTIATE(double)
#undef RNNKIT_INSTANTIATE

}  // namespace rnnkit
