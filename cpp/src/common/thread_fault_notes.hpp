#pragma once

// Private glue between ThreadFaults, a component's NoteLog and its health.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "common/log_notes.hpp"
#include "sessionstream/common/thread_faults.hpp"

namespace sessionstream::detail {

// How long a loop waits after a fault before its next unit of work.
inline constexpr std::chrono::milliseconds kFaultPause{100};

// ThreadFaults::contain, and each fault also noted once (kind "thread.fault").
// The note quotes the latest fault: under two at once it may quote the other.
template <class Body>
bool contain_noted(ThreadFaults& faults, NoteLog& notes, std::string_view where,
                   Body&& body) noexcept {
  if (faults.contain(where, std::forward<Body>(body))) return true;
  try {
    notes.always("error", "thread.fault",
                 "a native thread failed and abandoned one unit of work, then carried on: " +
                     faults.report().last);
  } catch (...) {
    // Counted in faults all the same.
  }
  return false;
}

// A stop-aware pause after a fault, so one repeating at once cannot spin a core.
inline void pause_after_fault(const std::stop_token& stop) noexcept {
  try {
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    (void)wake.wait_for(lock, stop, kFaultPause, [] { return false; });
  } catch (...) {
    std::this_thread::sleep_for(kFaultPause);  // short; not stop-aware
  }
}

// A recent fault makes a running component degraded, its reason appended.
inline void degrade_on_fault(const ThreadFaultReport& faults, std::string& status,
                             std::string& reason) {
  if (!faults.recent || status == "stopped") return;
  std::string why = "a native thread failed: " + faults.last;
  if (status == "degraded" && !reason.empty()) {
    reason += "; ";
    reason += why;
  } else {
    reason = std::move(why);
  }
  status = "degraded";
}

}  // namespace sessionstream::detail
