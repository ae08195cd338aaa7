// The barrier the threads of a split run pass after every step (each thread computes some of
// the step's columns and all of them read the whole new state at the next step). A step takes
// microseconds and a sleeping thread takes tens to wake, so waiters spin, then yield so that an
// oversubscribed machine still makes progress. Eigen-free and compiled once, at the baseline
// level (step_barrier.cpp), so every SIMD variant shares one definition.
#pragma once

#include <atomic>
#include <exception>

namespace rnnkit {

// Thrown by arrive_and_wait in the other parts when one part failed (abort()), so that no
// part waits forever for a thread that left.
struct BarrierBroken : std::exception {
  const char* what() const noexcept override { return "rnnkit: another thread of the run failed"; }
};

class StepBarrier {
 public:
  explicit StepBarrier(int parties) : parties_(parties) {}
  StepBarrier(const StepBarrier&) = delete;
  StepBarrier& operator=(const StepBarrier&) = delete;

  // Returns once all `parties` threads have called it (for this round); throws BarrierBroken
  // once abort() was called.
  void arrive_and_wait();
  // A part failed: every waiting and future arrive_and_wait throws.
  void abort() { broken_.store(true, std::memory_order_release); }

 private:
  const int parties_;
  std::atomic<bool> broken_{false};
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> round_{0};
};

}  // namespace rnnkit
