// The barrier the threads of a split run pass after every step (each thread computes some of
// the step's columns and all of them read the whole new state at the next step). A step takes
// microseconds and a sleeping thread takes tens to wake, so waiters spin, then yield so that an
// oversubscribed machine still makes progress. Eigen-free and compiled once, at the baseline
// level (step_barrier.cpp), so every SIMD variant shares one definition.
#pragma once

#include <atomic>

namespace rnnkit {

class StepBarrier {
 public:
  explicit StepBarrier(int parties) : parties_(parties) {}
  StepBarrier(const StepBarrier&) = delete;
  StepBarrier& operator=(const StepBarrier&) = delete;

  // Returns once all `parties` threads have called it (for this round).
  void arrive_and_wait();

 private:
  const int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> round_{0};
};

}  // namespace rnnkit
