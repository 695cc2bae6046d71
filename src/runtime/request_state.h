// The shared state behind a RequestHandle: the engine's worker pushes events, the handle's reader
// pops them, and either side may cancel. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "gemma_local/engine.h"

namespace gemma_local {

struct RequestHandle::State {
  explicit State(uint64_t request_id) : id(request_id) {}

  // Worker side. Events after the final one are dropped.
  void Push(Event e);
  void Finish(Event final_event);  // `final_event.final` is set here
  bool cancelled() const { return cancel.load(std::memory_order_relaxed); }

  // Reader side: the next event within `timeout` (nullopt: none in time, or all were read).
  std::optional<Event> Pop(std::optional<std::chrono::milliseconds> timeout);
  // Reader side: blocks until the final event has been pushed (the worker then wakes the reader
  // once, not per token: Wait() readers cost the generating thread nothing per step).
  void WaitForFinal();

  const uint64_t id;
  std::atomic<bool> cancel{false};
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  bool final_pushed = false;
  bool final_popped = false;
  int readers_waiting = 0;  // readers blocked in Pop: only they need a wake-up per event
};

using RequestState = RequestHandle::State;

}  // namespace gemma_local
