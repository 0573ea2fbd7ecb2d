#include "sessionstream/edge/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include "edge/adopt_socket.hpp"
#include "edge/shared_state.hpp"
#include "edge/sse_session.hpp"
#include "edge/websocket_session.hpp"
#include "edge/worker.hpp"
#include "sessionstream/common/errors.hpp"

namespace sessionstream::edge {

namespace {

EngineConfig validated(EngineConfig config) {
  const auto require = [](bool ok, const std::string& what) {
    if (!ok) throw InvalidArgument("engine config: " + what);
  };
  const auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
  require(config.threads >= 1 && config.threads <= 256,
          "threads must be between 1 and 256, got " + std::to_string(config.threads));
  require(config.heartbeat_interval.count() > 0,
          "heartbeat_interval must be positive, got " + ms(config.heartbeat_interval));
  require(config.send_timeout.count() > 0,
          "send_timeout must be positive, got " + ms(config.send_timeout));
  require(config.ws_idle_timeout.count() > 0,
          "ws_idle_timeout must be positive, got " + ms(config.ws_idle_timeout));
  require(config.handshake_timeout.count() > 0,
          "handshake_timeout must be positive, got " + ms(config.handshake_timeout));
  require(config.max_batch_bytes > 0, "max_batch_bytes must be positive, got 0");
  require(config.shutdown_retry_ms >= 0, "shutdown_retry_ms must not be negative, got " +
                                             std::to_string(config.shutdown_retry_ms));
  require(config.ws_max_message_bytes > 0, "ws_max_message_bytes must be positive, got 0");
  require(config.ws_hard_max_message_bytes >= config.ws_max_message_bytes,
          "ws_hard_max_message_bytes (" + std::to_string(config.ws_hard_max_message_bytes) +
              ") must be at least ws_max_message_bytes (" +
              std::to_string(config.ws_max_message_bytes) + ")");
  require(config.ws_messages_per_second > 0, "ws_messages_per_second must be positive, got " +
                                                 std::to_string(config.ws_messages_per_second));
  require(config.ws_message_burst >= 1, "ws_message_burst must be at least 1, got 0");
  require(config.outbox_max_frames >= 1, "outbox_max_frames must be at least 1, got 0");
  require(config.outbox_max_bytes >= 1, "outbox_max_bytes must be at least 1, got 0");
  require(config.inbound_max_messages >= 1, "inbound_max_messages must be at least 1, got 0");
  return config;
}

void check_header(const std::string& text) {
  if (text.find_first_of("\r\n") != std::string::npos || text.find('\0') != std::string::npos) {
    throw InvalidArgument("response header '" + text.substr(0, 64) +
                          "' contains CR, LF or NUL; header names and values are single lines");
  }
}

}  // namespace

struct Engine::Impl {
  Impl(EngineConfig config, std::shared_ptr<Notifier> host_notifier)
      : shared(validated(config), std::move(host_notifier)) {
    workers.reserve(shared.config.threads);
    for (std::size_t i = 0; i < shared.config.threads; ++i) {
      workers.push_back(std::make_unique<Worker>(shared));
    }
  }

  // The worker whose notifier the connection was opened with. Closes fd when
  // there is none: until adopt_socket() takes it, fd is ours to close.
  Worker& worker_for(int fd, const ConnectionPtr& connection) {
    try {
      if (!connection)
        throw InvalidArgument("adopting fd " + std::to_string(fd) +
                              " needs a connection, got none");
      return worker_of(*connection);
    } catch (...) {
      if (fd >= 0) ::close(fd);
      throw;
    }
  }

  Worker& worker_of(const Connection& connection) {
    const auto& notifier = connection.mailbox()->notifier();
    const auto it = std::find_if(workers.begin(), workers.end(), [&](const auto& worker) {
      return worker->notifier() == notifier;
    });
    if (it == workers.end()) {
      throw InvalidArgument("connection " + std::to_string(connection.id()) +
                            " was not opened with a notifier of this engine; open it with "
                            "Engine::next_notifier()");
    }
    return **it;
  }

  // Hands a counted session to its worker unless adoption is refused; the
  // lock orders every accepted adoption before stop()'s close-all.
  template <typename MakeSession>
  void hand_over(Worker& worker, const ConnectionPtr& connection, MakeSession make) {
    std::unique_lock lock(adopt_mutex);
    if (refusing) {
      lock.unlock();
      connection->close(close_reason::shutdown);
      throw Closed("the engine is shutting down; connection " + std::to_string(connection->id()) +
                   " was closed");
    }
    shared.session_opened();
    try {
      worker.adopt(make());
    } catch (...) {
      shared.session_closed();
      throw;
    }
  }

  SharedState shared;  // outlives the workers
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<std::size_t> next{0};
  std::mutex adopt_mutex;
  bool refusing = false;
  std::mutex stop_mutex;
  bool stopped = false;
};

Engine::Engine(EngineConfig config, std::shared_ptr<Notifier> host_notifier)
    : impl_(std::make_unique<Impl>(config, std::move(host_notifier))) {}

Engine::~Engine() {
  stop();
}

std::shared_ptr<Notifier> Engine::next_notifier() {
  const std::size_t i = impl_->next.fetch_add(1, std::memory_order_relaxed);
  return impl_->workers[i % impl_->workers.size()]->notifier();
}

void Engine::adopt_sse(int fd, ConnectionPtr connection, SseAdopt options) {
  Worker& worker = impl_->worker_for(fd, connection);
  const EngineConfig& config = impl_->shared.config;
  auto socket = adopt_socket(worker.context(), fd, 2 * config.heartbeat_interval);
  impl_->hand_over(worker, connection, [&] {
    auto session =
        std::make_shared<SseSession>(worker, std::move(socket), connection, std::move(options));
    Counters::add(impl_->shared.counters.adopted_sse);
    Counters::add(impl_->shared.counters.open_sse);
    return session;
  });
}

void Engine::adopt_websocket(int fd, ConnectionPtr connection, WebSocketAdopt options) {
  Worker& worker = impl_->worker_for(fd, connection);
  const EngineConfig& config = impl_->shared.config;
  auto socket = adopt_socket(worker.context(), fd, config.ws_idle_timeout);
  for (const auto& [name, value] : options.headers) {
    check_header(name);
    check_header(value);
  }
  impl_->hand_over(worker, connection, [&] {
    auto outbox = std::make_shared<Outbox>(connection->id(), worker.notifier(), connection,
                                           config.outbox_max_frames, config.outbox_max_bytes);
    if (!impl_->shared.register_outbox(connection->id(), outbox)) {
      throw InvalidArgument("connection " + std::to_string(connection->id()) +
                            " is already adopted");
    }
    try {
      auto session = std::make_shared<WebSocketSession>(worker, std::move(socket), connection,
                                                        std::move(options), outbox);
      Counters::add(impl_->shared.counters.adopted_websocket);
      Counters::add(impl_->shared.counters.open_websocket);
      return session;
    } catch (...) {
      impl_->shared.unregister_outbox(connection->id());
      throw;
    }
  });
}

bool Engine::send_text(std::uint64_t connection_id, std::string text) {
  const std::shared_ptr<Outbox> outbox = impl_->shared.find_outbox(connection_id);
  return outbox && outbox->push(std::move(text)) == Outbox::Push::queued;
}

std::vector<InboundMessage> Engine::take_inbound(std::size_t max) {
  return impl_->shared.inbound.take(max);
}

EngineMetrics Engine::metrics() const {
  return impl_->shared.counters.snapshot();
}

void Engine::begin_shutdown() {
  std::lock_guard lock(impl_->adopt_mutex);
  impl_->refusing = true;
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  return impl_->shared.wait_idle(timeout);
}

void Engine::stop() {
  std::lock_guard stop_lock(impl_->stop_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  begin_shutdown();
  for (const auto& worker : impl_->workers) worker->stop();
  for (const auto& worker : impl_->workers) worker->join();
}

}  // namespace sessionstream::edge
