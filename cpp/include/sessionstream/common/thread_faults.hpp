#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace sessionstream {

struct ThreadFaultReport {
  std::uint64_t count = 0;
  std::string last;     // "<where>: <what>"
  bool recent = false;  // last fault within ThreadFaults::kRecent
};

// An exception escaping a native thread's body, or a callback librdkafka calls
// from C, ends the whole process through std::terminate. Every such boundary
// runs its unit of work through contain(): a fault abandons that unit only, is
// counted here, and the thread carries on; health reports the component
// degraded for kRecent after the last one. Thread-safe; the mutex is a leaf.
class ThreadFaults {
 public:
  static constexpr std::chrono::seconds kRecent{60};
  // What a fault of a type not derived from std::exception is recorded as.
  static constexpr std::string_view kUnknown = "unknown exception (not a std::exception)";

  ThreadFaults() = default;
  ThreadFaults(const ThreadFaults&) = delete;
  ThreadFaults& operator=(const ThreadFaults&) = delete;

  // Runs body; true when it returned, false when it threw (the fault recorded).
  template <class Body>
  bool contain(std::string_view where, Body&& body) noexcept {
    try {
      std::invoke(std::forward<Body>(body));
      return true;
    } catch (const std::exception& e) {
      record(where, e.what());
    } catch (...) {
      record(where, kUnknown);
    }
    return false;
  }

  // Never throws: out of memory, the fault is still counted and timed.
  void record(std::string_view where, std::string_view what) noexcept;
  [[nodiscard]] ThreadFaultReport report() const;

 private:
  using Clock = std::chrono::steady_clock;

  std::atomic<std::uint64_t> count_{0};
  std::atomic<Clock::rep> last_at_{0};  // time_since_epoch of the last fault
  mutable std::mutex mutex_;
  std::string last_;
};

}  // namespace sessionstream
