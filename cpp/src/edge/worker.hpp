#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "edge/session.hpp"
#include "edge/shared_state.hpp"
#include "sessionstream/core/notifier.hpp"

namespace sessionstream::edge {

// One io_context and the thread running it. Owns the sessions adopted onto
// it and a Notifier whose eventfd it watches: each ready token wakes the
// session of that mailbox id. adopt() and stop() may be called from any
// thread; everything else runs on the worker thread only, without locks.
class Worker {
 public:
  explicit Worker(SharedState& shared);
  ~Worker();  // stop() and join
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  [[nodiscard]] boost::asio::io_context& context() noexcept { return context_; }
  [[nodiscard]] const std::shared_ptr<Notifier>& notifier() const noexcept { return notifier_; }
  [[nodiscard]] SharedState& shared() noexcept { return shared_; }

  // The session must have been counted with SharedState::session_opened().
  void adopt(std::shared_ptr<Session> session);
  // Closes every session (reason shutdown) and lets the thread finish; a
  // session adopted afterwards is closed on arrival.
  void stop();
  void join();

  // Worker thread only. Called by a closing session, exactly once.
  void remove(std::uint64_t id) noexcept;
  // Throw-away space for bytes a session reads and discards.
  [[nodiscard]] std::span<char> scratch() noexcept { return scratch_; }

 private:
  void run() noexcept;
  void wait_ready();
  void on_ready(const boost::system::error_code& ec);
  void schedule_tick();
  void on_tick(const boost::system::error_code& ec);
  void close_all() noexcept;

  SharedState& shared_;
  boost::asio::io_context context_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  const std::shared_ptr<Notifier> notifier_;
  boost::asio::posix::stream_descriptor ready_;  // owns a dup of the notifier's eventfd
  boost::asio::steady_timer tick_;
  const std::chrono::milliseconds tick_interval_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::vector<char> scratch_;
  bool stopping_ = false;
  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace sessionstream::edge
