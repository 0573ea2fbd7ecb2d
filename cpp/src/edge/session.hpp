#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "sessionstream/sessions/connection_manager.hpp"

namespace sessionstream::edge {

class Worker;

// One adopted connection. Lives only on its worker's thread: every method is
// called there. The worker's map is the owner of record; completion handlers
// in flight hold a reference only until they run (with operation_aborted once
// the socket is closed). A session owns its socket and its ConnectionPtr and
// removes itself from the worker exactly once, when it closes.
class Session : public std::enable_shared_from_this<Session> {
 public:
  using Clock = std::chrono::steady_clock;

  Session(Worker& worker, ConnectionPtr connection)
      : worker_(worker), connection_(std::move(connection)), id_(connection_->id()) {}
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  // Registered with the worker; tries a take at once (tokens may have been
  // spent before registration).
  virtual void start() = 0;
  // A ready token for this id: mailbox frames, an outbox frame or a close.
  virtual void on_ready() = 0;
  // The worker's periodic scan: heartbeats and send timeouts.
  virtual void on_tick(Clock::time_point now) = 0;
  // Closes at once without a close frame: connection->close(reason), socket closed.
  virtual void force_close(std::string_view reason) noexcept = 0;
  // Closes the socket without touching the connection (a duplicate adoption).
  virtual void abandon() noexcept = 0;

 protected:
  // Runs a completion handler's body: a failure closes this session instead
  // of escaping into the io_context, which serves other sessions too.
  template <typename Body>
  void guarded(Body&& body) noexcept {
    try {
      body();
    } catch (...) {
      force_close(close_reason::client_gone);
    }
  }

  Worker& worker_;
  const ConnectionPtr connection_;
  const std::uint64_t id_;
};

}  // namespace sessionstream::edge
