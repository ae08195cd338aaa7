// rnnkit's own threads: a small persistent pool that runs independent tasks (slices of batch
// rows, each for the whole sequence) with run(), or parts that must run at once and meet at a
// barrier after every step (split steps) with run_together(). Eigen stays single-threaded.
// One pool per process; a call that finds it busy (another Python thread is using it) runs its
// tasks on the calling thread instead, so threads are never oversubscribed. After a call, the
// workers spin for a moment before they sleep, so that back-to-back calls find them awake.
// A task that throws (an allocation inside a product failing, say) does not end the process:
// the pool keeps the first error, lets the other tasks finish, and rethrows it to the caller.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnkit {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Threads a call may use, the calling thread included (>= 1).
  int threads() const;
  void set_threads(int threads);

  // Runs task(0) ... task(count - 1), on the pool's workers and the calling thread, and returns
  // when all are done; then rethrows the first exception a task threw, if any.
  void run(int count, const std::function<void(int)>& task);

  // Runs task(0) ... task(count - 1) each on its own thread, all at once (tasks that wait for
  // each other), if the pool is free and has count - 1 workers; otherwise runs nothing and
  // returns false.
  bool run_together(int count, const std::function<void(int)>& task);

  // A test hook: the task after `after` more calls of fault_point() throws std::bad_alloc
  // (memory) or std::runtime_error; after < 0 disarms it. Tasks call fault_point() first.
  static void inject_fault(int after, bool memory);
  static void fault_point();

  ~ThreadPool();

 private:
  // Runs one task, keeping its exception (the first of a call, preferring a real error to a
  // BarrierBroken that only says another task failed).
  void run_task(const std::function<void(int)>& task, int index);
  ThreadPool();
  void worker_loop();
  // Hands the tasks to the workers and the calling thread; the caller holds busy_.
  void dispatch(int count, const std::function<void(int)>& task);
  void stop_workers();

  std::mutex busy_;  // held by the one call using the workers
  mutable std::mutex state_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::atomic<int> threads_{1};  // read on every call: no lock
  const std::function<void(int)>* task_ = nullptr;
  int count_ = 0, next_ = 0, unfinished_ = 0;
  unsigned generation_ = 0;
  std::atomic<unsigned> published_{0};  // generation_, readable without the lock (spinning)
  bool stopping_ = false;
  std::exception_ptr error_;  // under state_
  bool error_is_secondary_ = false;
};

}  // namespace rnnkit
