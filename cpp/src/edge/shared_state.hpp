#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "edge/counters.hpp"
#include "edge/inbound_queue.hpp"
#include "edge/outbox.hpp"
#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

// What the engine's workers and sessions share: the config, counters, the
// inbound queue, the outboxes of open WebSocket connections by id, and the
// count of open sessions. Owned by the engine, which outlives every worker.
// Thread-safe; the directory and open-count mutexes are leaves.
class SharedState {
 public:
  SharedState(EngineConfig config, std::shared_ptr<Notifier> host_notifier);

  const EngineConfig config;
  Counters counters;
  InboundQueue inbound;

  // False when id has an outbox already (the connection is adopted).
  [[nodiscard]] bool register_outbox(std::uint64_t id, std::shared_ptr<Outbox> outbox);
  void unregister_outbox(std::uint64_t id);
  [[nodiscard]] std::shared_ptr<Outbox> find_outbox(std::uint64_t id) const;

  // Every adopted session is counted open before it is handed to its worker
  // and closed exactly once when it ends.
  void session_opened();
  void session_closed();
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  mutable std::mutex directory_mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Outbox>> outboxes_;

  std::mutex open_mutex_;
  std::condition_variable idle_;
  std::size_t open_ = 0;
};

}  // namespace sessionstream::edge
