// StateLock: the lock on which a stateful layer's calls take turns (a call reads the carried
// states and replaces them, so two at once would lose an update). Python's validating path
// takes it with `with layer._state_lock:`; a plan's fast path takes it in C++, which spares a
// streaming step the ~0.3 us of a Python-level `with`.
//
// Reentrant, like threading.RLock: a Bidirectional layer holds both of its layers' locks around
// their calls. Acquired with the GIL held; waiting never keeps the GIL, since the holder may need
// it to finish.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace rnnkit_bindings {

class StateLock {
 public:
  void acquire() {
    const std::thread::id me = std::this_thread::get_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return;
    }
    if (!mutex_.try_lock()) {
      pybind11::gil_scoped_release release;
      mutex_.lock();
    }
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
  }

  void release() {
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      throw std::runtime_error("cannot release un-acquired lock");  // RLock's RuntimeError
    }
    if (--depth_ == 0) {
      owner_.store(std::thread::id(), std::memory_order_relaxed);
      mutex_.unlock();
    }
  }

  // Holds the lock for a scope.
  class Guard {
   public:
    explicit Guard(StateLock& lock) : lock_(lock) { lock_.acquire(); }
    ~Guard() { lock_.release(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    StateLock& lock_;
  };

 private:
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};
  int depth_ = 0;  // only the owner touches it
};

}  // namespace rnnkit_bindings
