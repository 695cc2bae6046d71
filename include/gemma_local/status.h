// Status and Result<T>: errors as values for every library entry point.
//
// Contract: library code never throws for bad input and never aborts on it; it returns a Status
// whose message names the file, key, tensor or field involved and the expected vs actual value.
// Exceptions appear only at the CLI/server edge. (Rejected alternative: std::expected needs C++23
// and is not in g++ 12's C++20 mode.)
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace gemma_local {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // caller passed something unusable (bad flag, bad parameter)
  kNotFound,          // a file, key or tensor that must exist does not
  kIoError,           // the OS refused (open, mmap, read, write)
  kCorruptData,       // a file's contents contradict its own format
  kUnsupported,       // well-formed but not something we can run (yet)
  kResourceExhausted, // a configured limit would be exceeded
  kCancelled,         // the work was cancelled, or its engine shut down before it ran
  kDeadlineExceeded,  // a configured time limit passed first (e.g. waiting in the queue)
  kInternal,          // our own bug; never reachable from input
  kUnavailable,       // over capacity right now (a full queue): the same call may succeed later
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt data: <message>", for logs and the CLI.
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>", to add the file or field name as an
  // error travels up.
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status IoError(std::string message);
Status CorruptDataError(std::string message);
Status UnsupportedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status CancelledError(std::string message);
Status DeadlineExceededError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = InternalError("Result constructed from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace gemma_local

#define GL_CONCAT_INNER_(a, b) a##b
#define GL_CONCAT_(a, b) GL_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (a Status) is not OK.
#define GL_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    ::gemma_local::Status gl_status_ = (expr);          \
    if (!gl_status_.ok()) return gl_status_;            \
  } while (0)

// `GL_ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns x or returns the error.
#define GL_ASSIGN_OR_RETURN(lhs, expr) \
  GL_ASSIGN_OR_RETURN_IMPL_(GL_CONCAT_(gl_result_, __LINE__), lhs, expr)
#define GL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
