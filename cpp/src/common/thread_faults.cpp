#include "sessionstream/common/thread_faults.hpp"

namespace sessionstream {

void ThreadFaults::record(std::string_view where, std::string_view what) noexcept {
  // The time first, released by the count: a reader seeing the count sees the time.
  last_at_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_release);
  try {
    std::string text;
    text.reserve(where.size() + 2 + what.size());
    text.append(where).append(": ").append(what);
    std::lock_guard lock(mutex_);
    last_ = std::move(text);
  } catch (...) {
    // No memory for the text (or the lock failed): the count and time stand.
  }
}

ThreadFaultReport ThreadFaults::report() const {
  ThreadFaultReport report;
  {
    std::lock_guard lock(mutex_);
    report.last = last_;
  }
  report.count = count_.load(std::memory_order_acquire);
  if (report.count > 0) {
    const Clock::time_point at{Clock::duration{last_at_.load(std::memory_order_relaxed)}};
    report.recent = Clock::now() - at < kRecent;
  }
  return report;
}

}  // namespace sessionstream
