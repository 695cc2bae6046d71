// RequestHandle, its shared state, and the Event / RequestInput helpers of the public API.
#include <limits>
#include <utility>

#include "gemma_local/engine.h"
#include "runtime/request_state.h"

namespace gemma_local {

RequestInput RequestInput::Tokens(std::vector<int32_t> ids) {
  RequestInput in;
  in.tokens = std::move(ids);
  return in;
}

RequestInput RequestInput::Text(std::string text) {
  RequestInput in;
  in.text = std::move(text);
  return in;
}

RequestInput RequestInput::Chat(ChatInput chat) {
  RequestInput in;
  in.chat = std::move(chat);
  return in;
}

namespace {
std::string Joined(const std::vector<ReplyEvent>& deltas, ReplyEvent::Kind kind) {
  std::string out;
  for (const ReplyEvent& d : deltas) {
    if (d.kind == kind) out += d.text;
  }
  return out;
}
}  // namespace

void LatencyHistogram::Observe(double ms) {
  size_t b = 0;
  while (b < kBoundsMs.size() && ms > kBoundsMs[b]) ++b;
  ++counts[b];
  ++count;
  sum_ms += ms;
}

double LatencyHistogram::QuantileBoundMs(double q) const {
  if (count == 0) return 0;
  const double want = q * static_cast<double>(count);
  int64_t seen = 0;
  for (size_t b = 0; b < kBoundsMs.size(); ++b) {
    seen += counts[b];
    if (static_cast<double>(seen) >= want) return kBoundsMs[b];
  }
  return std::numeric_limits<double>::infinity();
}

std::string Event::Content() const { return Joined(deltas, ReplyEvent::Kind::kContent); }
std::string Event::Reasoning() const { return Joined(deltas, ReplyEvent::Kind::kReasoning); }

void RequestHandle::State::Push(Event e) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (final_pushed) return;
    events.push_back(std::move(e));
    wake = readers_waiting > 0;
  }
  if (wake) cv.notify_all();
}

void RequestHandle::State::Finish(Event final_event) {
  final_event.final = true;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (final_pushed) return;
    final_pushed = true;
    events.push_back(std::move(final_event));
  }
  cv.notify_all();
}

std::optional<Event> RequestHandle::State::Pop(std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock<std::mutex> lock(mu);
  if (final_popped) return std::nullopt;
  auto ready = [this] { return !events.empty(); };
  ++readers_waiting;
  bool got = true;
  if (timeout) {
    got = cv.wait_for(lock, *timeout, ready);
  } else {
    cv.wait(lock, ready);
  }
  --readers_waiting;
  if (!got) return std::nullopt;
  Event e = std::move(events.front());
  events.pop_front();
  if (e.final) final_popped = true;
  return e;
}

void RequestHandle::State::WaitForFinal() {
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [this] { return final_pushed; });
}

RequestHandle::RequestHandle(std::shared_ptr<State> state) : state_(std::move(state)) {}

// Dropping a handle abandons its request: nobody reads the stream any more.
RequestHandle::~RequestHandle() {
  if (state_) state_->cancel.store(true);
}

uint64_t RequestHandle::id() const { return state_->id; }

std::optional<Event> RequestHandle::Next() { return state_->Pop(std::nullopt); }

std::optional<Event> RequestHandle::NextFor(std::chrono::milliseconds timeout) { return state_->Pop(timeout); }

bool RequestHandle::done() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->final_popped;
}

void RequestHandle::Cancel() { state_->cancel.store(true); }

Result<Completion> RequestHandle::Wait() {
  state_->WaitForFinal();  // then every event is queued: the loop below never blocks
  Completion c;
  while (std::optional<Event> e = Next()) {
    c.tokens.insert(c.tokens.end(), e->tokens.begin(), e->tokens.end());
    c.logprobs.insert(c.logprobs.end(), e->logprobs.begin(), e->logprobs.end());
    for (ReplyEvent& d : e->deltas) {
      switch (d.kind) {
        case ReplyEvent::Kind::kContent:
          c.text += d.text;
          break;
        case ReplyEvent::Kind::kReasoning:
          c.reasoning += d.text;
          break;
        case ReplyEvent::Kind::kToolCall:
          c.tool_calls.push_back(std::move(d.tool_call));
          break;
      }
    }
    if (!e->final) continue;
    if (e->finish_reason == "error") return e->error;
    c.prompt_tokens = std::move(e->prompt_tokens);
    c.finish_reason = e->finish_reason;
    c.reply_parsed = e->reply_parsed;
    c.malformed = e->malformed;
    c.malformed_reason = e->malformed_reason;
    c.constraint = e->constraint;
    c.usage = e->usage;
    c.timings = e->timings;
  }
  return c;
}

}  // namespace gemma_local
