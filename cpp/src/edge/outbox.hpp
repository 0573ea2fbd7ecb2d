#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sessionstream/core/notifier.hpp"
#include "sessionstream/sessions/connection_manager.hpp"

namespace sessionstream::edge {

// Direct text frames for one WebSocket connection: pushed from any thread
// (Engine::send_text) or by the session itself (error replies), drained by the
// session on its worker thread before mailbox frames. Bounded by frames and
// bytes; an overflow closes the connection as slow_consumer. Thread-safe; the
// worker notifier is marked after the lock is released. Holds the connection
// only weakly: the session owns it.
class Outbox {
 public:
  enum class Push { queued, overflow, closed };

  Outbox(std::uint64_t id, std::shared_ptr<Notifier> wake, std::weak_ptr<Connection> connection,
         std::size_t max_frames, std::size_t max_bytes);

  // wake=false for the session's own pushes: it writes right after.
  Push push(std::string frame, bool wake = true);
  [[nodiscard]] std::optional<std::string> pop();
  [[nodiscard]] bool overflowed() const;
  // Drops what is pending; later pushes return closed.
  void close();

 private:
  const std::uint64_t id_;
  const std::shared_ptr<Notifier> wake_;
  const std::weak_ptr<Connection> connection_;
  const std::size_t max_frames_;
  const std::size_t max_bytes_;

  mutable std::mutex mutex_;
  // A vector read from head_ rather than a deque: an idle connection's empty
  // outbox then holds no heap memory at all.
  std::vector<std::string> frames_;
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
  bool closed_ = false;
  bool overflowed_ = false;
};

}  // namespace sessionstream::edge
