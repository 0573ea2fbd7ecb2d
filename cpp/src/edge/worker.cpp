#include "edge/worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <system_error>
#include <utility>

#include "sessionstream/core/mailbox.hpp"

namespace sessionstream::edge {

namespace {

std::chrono::milliseconds tick_interval(const EngineConfig& config) {
  // Fine enough for both the heartbeat and the send timeout it enforces.
  const auto shortest = std::min(config.heartbeat_interval, config.send_timeout);
  return std::max(std::chrono::milliseconds{1}, shortest / 4);
}

}  // namespace

Worker::Worker(SharedState& shared)
    : shared_(shared),
      guard_(boost::asio::make_work_guard(context_)),
      notifier_(std::make_shared<Notifier>()),
      ready_(context_),
      tick_(context_),
      tick_interval_(tick_interval(shared.config)),
      scratch_(16384) {
  // A dup, so the descriptor object may own (and close) what it watches
  // while the Notifier keeps its own fd.
  const int fd = ::dup(notifier_->fd());
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "dup of notifier eventfd");
  boost::system::error_code ec;
  ready_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    throw std::system_error(ec.value(), std::generic_category(), "watching notifier eventfd");
  }
  // Armed before the thread exists, so no other thread touches them yet.
  wait_ready();
  schedule_tick();
  thread_ = std::jthread([this] { run(); });
}

Worker::~Worker() {
  stop();
  join();
}

void Worker::run() noexcept {
  // Handlers catch their own errors; this is the last line so one escaping
  // exception never takes the other sessions of this thread down.
  while (true) {
    try {
      context_.run();
      return;
    } catch (...) {
    }
  }
}

void Worker::adopt(std::shared_ptr<Session> session) {
  boost::asio::post(context_, [this, session = std::move(session)] {
    const auto [it, inserted] = sessions_.try_emplace(session->id(), session);
    if (!inserted) {
      // The same connection adopted twice: the first adoption keeps it.
      session->abandon();
      shared_.session_closed();
      return;
    }
    try {
      if (stopping_) {
        session->force_close(close_reason::shutdown);
      } else {
        session->start();
      }
    } catch (...) {
      session->force_close(close_reason::client_gone);
    }
  });
}

void Worker::stop() {
  boost::asio::post(context_, [this] { close_all(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::remove(std::uint64_t id) noexcept {
  // The caller holds its own reference, so erasing never destroys the
  // session while its member function is on the stack.
  sessions_.erase(id);
  shared_.session_closed();
}

void Worker::wait_ready() {
  ready_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this](const boost::system::error_code& ec) { on_ready(ec); });
}

void Worker::on_ready(const boost::system::error_code& ec) {
  if (ec || stopping_) return;
  for (const std::uint64_t token : notifier_->take_ready()) {
    const auto it = sessions_.find(token);
    if (it == sessions_.end()) continue;  // closed already, or not registered yet
    const std::shared_ptr<Session> session = it->second;
    try {
      session->on_ready();
    } catch (...) {
      session->force_close(close_reason::client_gone);
    }
  }
  wait_ready();
}

void Worker::schedule_tick() {
  tick_.expires_after(tick_interval_);
  tick_.async_wait([this](const boost::system::error_code& ec) { on_tick(ec); });
}

void Worker::on_tick(const boost::system::error_code& ec) {
  if (ec || stopping_) return;
  // A scan may close sessions, which erases them from the map.
  std::vector<std::shared_ptr<Session>> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_) sessions.push_back(session);
  const auto now = Session::Clock::now();
  for (const auto& session : sessions) {
    try {
      session->on_tick(now);
    } catch (...) {
      session->force_close(close_reason::client_gone);
    }
  }
  schedule_tick();
}

void Worker::close_all() noexcept {
  stopping_ = true;
  std::vector<std::shared_ptr<Session>> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_) sessions.push_back(session);
  for (const auto& session : sessions) {
    try {
      session->force_close(close_reason::shutdown);
    } catch (...) {
    }
  }
  boost::system::error_code ignored;
  tick_.cancel();
  ready_.close(ignored);
  // With the guard gone, run() returns once the aborted handlers have run.
  guard_.reset();
}

}  // namespace sessionstream::edge
