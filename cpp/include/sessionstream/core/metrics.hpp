#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sessionstream {

// Counters updated on hot paths with relaxed atomics; a snapshot is a
// consistent-enough view for health and Prometheus, not a transaction.
struct Metrics {
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> slow_consumer_disconnects{0};
  std::atomic<std::uint64_t> resumes_exact{0};
  std::atomic<std::uint64_t> resumes_gap{0};
  std::atomic<std::uint64_t> resumes_reset{0};
  std::atomic<std::uint64_t> frames_taken{0};
  std::atomic<std::uint64_t> bytes_taken{0};
  // External sequencing: events delivered without an id (local sources), and
  // holes the bus reported (events trimmed before this node read them).
  std::atomic<std::uint64_t> transient{0};
  std::atomic<std::uint64_t> lost_gaps{0};

  void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  static std::uint64_t read(const std::atomic<std::uint64_t>& counter) noexcept {
    return counter.load(std::memory_order_relaxed);
  }
};

}  // namespace sessionstream
