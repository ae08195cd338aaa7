#include "rnnkit/runtime/step_barrier.hpp"

#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace rnnkit {

namespace {

// ~4000 pauses: a few microseconds, about one short step.
constexpr int kSpins = 4000;

void pause() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#endif
}

}  // namespace

void StepBarrier::arrive_and_wait() {
  if (broken_.load(std::memory_order_acquire)) throw BarrierBroken();
  const unsigned round = round_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parties_) {
    arrived_.store(0, std::memory_order_relaxed);
    round_.store(round + 1, std::memory_order_release);  // publishes every party's writes
    return;
  }
  for (int spins = 0; round_.load(std::memory_order_acquire) == round; ++spins) {
    if (broken_.load(std::memory_order_acquire)) throw BarrierBroken();
    if (spins < kSpins) {
      pause();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace rnnkit
