#include "core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace gemma_local {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 5, 64, 1001}) {
      for (int64_t grain : {1, 3, 100}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.ParallelFor(n, grain, [&](int64_t b, int64_t e) {
          ASSERT_LE(0, b);
          ASSERT_LE(e, n);
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
      }
    }
  }
}

TEST(ThreadPool, ReusableManyTimes) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 500; ++round) {
    pool.ParallelFor(100, 1, [&](int64_t b, int64_t e) { sum += e - b; });
  }
  EXPECT_EQ(sum.load(), 50000);
}

// Idle workers spin for a while and then sleep: jobs must start from both states, callers from
// several threads must serialize, and a pool must shut down whether its workers spin or sleep.
TEST(ThreadPool, WakesFromSpinningAndSleepingWorkersAndShutsDownFromBoth) {
  for (int pause_us : {0, 3000}) {  // 3 ms is well past the spin window
    ThreadPool pool(3);
    std::atomic<int64_t> sum{0};
    for (int round = 0; round < 20; ++round) {
      pool.ParallelFor(64, 1, [&](int64_t b, int64_t e) { sum += e - b; });
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    }
    EXPECT_EQ(sum.load(), 20 * 64) << "pause " << pause_us;
  }
  { ThreadPool spinning(4); spinning.ParallelFor(8, 1, [](int64_t, int64_t) {}); }  // destroyed mid-spin
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) pool.ParallelFor(50, 1, [&](int64_t b, int64_t e) { sum += e - b; });
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(sum.load(), 3 * 200 * 50);
}

// fn(worker, begin, end): worker ids are in [0, size()), no worker runs two ranges at once, even
// with callers on several threads (the inline path of small loops included), so per-worker
// scratch needs no lock.
TEST(ThreadPool, WorkerIdsAreInRangeAndNeverRunTwoRangesAtOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> active(static_cast<size_t>(threads));
    std::atomic<int64_t> covered{0};
    std::atomic<bool> bad{false};
    auto body = [&](int worker, int64_t b, int64_t e) {
      if (worker < 0 || worker >= threads || active[worker].fetch_add(1) != 0) bad = true;
      std::this_thread::yield();
      covered += e - b;
      if (worker >= 0 && worker < threads) active[worker].fetch_sub(1);
    };
    std::vector<std::thread> callers;
    for (int c = 0; c < 3; ++c) {
      callers.emplace_back([&] {
        for (int round = 0; round < 100; ++round) {
          pool.ParallelFor(64, 1, body);
          pool.ParallelFor(3, 8, body);  // inline: n <= grain
        }
      });
    }
    for (std::thread& t : callers) t.join();
    EXPECT_FALSE(bad.load()) << threads << " threads";
    EXPECT_EQ(covered.load(), 3 * 100 * (64 + 3));
  }
}

}  // namespace
}  // namespace gemma_local
