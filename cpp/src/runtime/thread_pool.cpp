#include "rnnkit/runtime/thread_pool.hpp"

#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <utility>

#include "rnnkit/runtime/step_barrier.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace rnnkit {

namespace {

constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);

std::atomic<int> fault_countdown{-1};
std::atomic<bool> fault_is_memory{true};

void pause() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#endif
}

int threads_from_environment() {
  const char* value = std::getenv("RNNKIT_NUM_THREADS");
  if (value == nullptr || *value == '\0') return 1;
  const int n = std::atoi(value);
  return n >= 1 ? n : 1;
}

}  // namespace

void ThreadPool::inject_fault(int after, bool memory) {
  fault_is_memory.store(memory);
  fault_countdown.store(after < 0 ? -1 : after);
}

void ThreadPool::fault_point() {
  if (fault_countdown.load(std::memory_order_relaxed) < 0) return;
  if (fault_countdown.fetch_sub(1) == 0) {
    if (fault_is_memory.load()) throw std::bad_alloc();
    throw std::runtime_error("rnnkit: fault injected into a worker task (test hook)");
  }
}

void ThreadPool::run_task(const std::function<void(int)>& task, int index) {
  try {
    task(index);
  } catch (const BarrierBroken&) {
    std::lock_guard<std::mutex> lock(state_);
    if (!error_) {
      error_ = std::current_exception();
      error_is_secondary_ = true;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(state_);
    if (!error_ || error_is_secondary_) {
      error_ = std::current_exception();
      error_is_secondary_ = false;
    }
  }
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() { set_threads(threads_from_environment()); }

ThreadPool::~ThreadPool() { stop_workers(); }

int ThreadPool::threads() const { return threads_.load(std::memory_order_relaxed); }

void ThreadPool::set_threads(int threads) {
  if (threads < 1) threads = 1;
  std::lock_guard<std::mutex> busy(busy_);  // wait for a running call to finish
  stop_workers();
  std::lock_guard<std::mutex> lock(state_);
  threads_ = threads;
  stopping_ = false;
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(state_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

void ThreadPool::worker_loop() {
  unsigned seen = 0;
  std::unique_lock<std::mutex> lock(state_);
  for (;;) {
    if (generation_ == seen && !stopping_) {
      // Waking a sleeping thread can take longer than a whole call (a halted vCPU under a busy
      // host; bench/README.md, "Design measurements"). Spinning for a moment first keeps a
      // worker awake between back-to-back calls, as OpenMP does.
      lock.unlock();
      const auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
      while (published_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until) {
        pause();
      }
      lock.lock();
    }
    wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    while (next_ < count_) {
      const int index = next_++;
      const auto* task = task_;
      lock.unlock();
      run_task(*task, index);
      lock.lock();
      if (--unfinished_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::run(int count, const std::function<void(int)>& task) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (count <= 1 || !busy.owns_lock() || workers_.empty()) {
    for (int i = 0; i < count; ++i) task(i);
    return;
  }
  dispatch(count, task);
}

bool ThreadPool::run_together(int count, const std::function<void(int)>& task) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock() || static_cast<int>(workers_.size()) < count - 1) return false;
  // Every worker takes one task and keeps it until all are done (they wait for each other),
  // so the count tasks end up on count distinct threads.
  dispatch(count, task);
  return true;
}

void ThreadPool::dispatch(int count, const std::function<void(int)>& task) {
  std::unique_lock<std::mutex> lock(state_);
  task_ = &task;
  count_ = count;
  next_ = 0;
  unfinished_ = count;
  ++generation_;
  published_.store(generation_, std::memory_order_release);
  wake_.notify_all();
  while (next_ < count_) {  // the calling thread takes tasks too
    const int index = next_++;
    lock.unlock();
    run_task(task, index);
    lock.lock();
    --unfinished_;
  }
  done_.wait(lock, [&] { return unfinished_ == 0; });
  task_ = nullptr;
  if (error_) {
    std::exception_ptr error = std::exchange(error_, nullptr);
    error_is_secondary_ = false;
    lock.unlock();
    std::rethrow_exception(error);
  }
}

}  // namespace rnnkit
