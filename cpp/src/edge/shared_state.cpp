#include "edge/shared_state.hpp"

#include <utility>

namespace sessionstream::edge {

SharedState::SharedState(EngineConfig engine_config, std::shared_ptr<Notifier> host_notifier)
    : config(engine_config), inbound(config.inbound_max_messages, std::move(host_notifier)) {}

bool SharedState::register_outbox(std::uint64_t id, std::shared_ptr<Outbox> outbox) {
  std::lock_guard lock(directory_mutex_);
  return outboxes_.try_emplace(id, std::move(outbox)).second;
}

void SharedState::unregister_outbox(std::uint64_t id) {
  std::shared_ptr<Outbox> released;  // destroyed outside the lock
  std::lock_guard lock(directory_mutex_);
  const auto it = outboxes_.find(id);
  if (it == outboxes_.end()) return;
  released = std::move(it->second);
  outboxes_.erase(it);
}

std::shared_ptr<Outbox> SharedState::find_outbox(std::uint64_t id) const {
  std::lock_guard lock(directory_mutex_);
  const auto it = outboxes_.find(id);
  return it == outboxes_.end() ? nullptr : it->second;
}

void SharedState::session_opened() {
  std::lock_guard lock(open_mutex_);
  ++open_;
}

void SharedState::session_closed() {
  bool idle = false;
  {
    std::lock_guard lock(open_mutex_);
    if (open_ > 0) --open_;
    idle = open_ == 0;
  }
  if (idle) idle_.notify_all();
}

bool SharedState::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(open_mutex_);
  return idle_.wait_for(lock, timeout, [this] { return open_ == 0; });
}

}  // namespace sessionstream::edge
