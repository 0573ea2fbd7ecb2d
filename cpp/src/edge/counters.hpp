#pragma once

#include <atomic>
#include <cstdint>

#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

// The engine's counters, bumped from any worker thread. Relaxed atomics: each
// is an independent statistic, never used to order other memory.
struct Counters {
  using Counter = std::atomic<std::uint64_t>;

  static void add(Counter& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  static void sub(Counter& counter) noexcept { counter.fetch_sub(1, std::memory_order_relaxed); }

  [[nodiscard]] EngineMetrics snapshot() const noexcept {
    const auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
    return EngineMetrics{
        get(adopted_sse),     get(adopted_websocket), get(open_sse),        get(open_websocket),
        get(writes),          get(bytes_written),     get(events_written),  get(heartbeats),
        get(send_timeouts),   get(ws_messages_in),    get(ws_rate_limited), get(ws_oversized),
        get(inbound_dropped), get(closed_total)};
  }

  Counter adopted_sse{0};
  Counter adopted_websocket{0};
  Counter open_sse{0};
  Counter open_websocket{0};
  Counter writes{0};
  Counter bytes_written{0};
  Counter events_written{0};
  Counter heartbeats{0};
  Counter send_timeouts{0};
  Counter ws_messages_in{0};
  Counter ws_rate_limited{0};
  Counter ws_oversized{0};
  Counter inbound_dropped{0};
  Counter closed_total{0};
};

}  // namespace sessionstream::edge
