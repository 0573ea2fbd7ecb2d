#pragma once

#include <algorithm>
#include <chrono>

namespace sessionstream::edge {

// rate tokens per second, at most burst saved up; the same arithmetic as the
// Python TokenBucket so both delivery paths refuse the same messages. Not
// thread-safe: one per connection, used on its worker thread.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate, double burst, Clock::time_point now = Clock::now()) noexcept
      : rate_(rate), burst_(burst), tokens_(burst), stamp_(now) {}

  // Spends one token; false when none is left (the caller refuses the message).
  bool take(Clock::time_point now = Clock::now()) noexcept {
    const double elapsed = std::chrono::duration<double>(now - stamp_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    stamp_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Seconds until the next token.
  [[nodiscard]] double retry_after() const noexcept {
    return std::max(0.0, (1.0 - tokens_) / rate_);
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point stamp_;
};

}  // namespace sessionstream::edge
