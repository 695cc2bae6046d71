// A fixed-size pool for data-parallel loops. The calling thread works too, so ThreadPool(1) runs
// everything inline. Work is split into contiguous index ranges; callers must make each index's
// result independent of how ranges are assigned (that is what keeps outputs bit-identical across
// thread counts). One ParallelFor at a time per pool (calls from several threads serialize).
// Idle workers spin for ~100 us before sleeping, so back-to-back loops (a decode step) do not pay
// a sleep and wake-up each. A call allocates nothing: the loop body is passed by reference, never
// copied into a std::function (a decode step makes hundreds of these calls).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace gemma_local {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), each at least `grain` long (except
  // the last), and returns when all are done. `fn` may instead take (worker, begin, end): worker
  // is in [0, size()), 0 being the calling thread, and no two ranges run at the same time on one
  // worker, so per-worker scratch needs no lock. Calls from several threads serialize (the
  // inline path too, so worker ids stay unique), so `fn` must not call ParallelFor on this pool.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    Job job;
    job.fn = static_cast<const void*>(&fn);
    if constexpr (std::is_invocable_v<F&, int, int64_t, int64_t>) {
      job.call = [](const void* f, int worker, int64_t begin, int64_t end) {
        (*static_cast<F*>(const_cast<void*>(f)))(worker, begin, end);
      };
    } else {
      job.call = [](const void* f, int, int64_t begin, int64_t end) {
        (*static_cast<F*>(const_cast<void*>(f)))(begin, end);
      };
    }
    Run(n, grain, job);
  }

 private:
  // A non-owning reference to the caller's loop body.
  struct Job {
    const void* fn = nullptr;
    void (*call)(const void* fn, int worker, int64_t begin, int64_t end) = nullptr;
  };
  void Run(int64_t n, int64_t grain, const Job& job);
  void WorkerLoop(int worker);
  void RunChunks(int worker);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one ParallelFor at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};  // bumped (under mutex_) for each job
  bool stop_ = false;                    // guarded by mutex_
  std::atomic<int> busy_{0};             // workers still on the current job
  // The current job.
  Job job_;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  std::atomic<int64_t> next_{0};
};

}  // namespace gemma_local
