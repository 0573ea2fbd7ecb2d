#include "sessionstream/sessions/session_store.hpp"

#include <algorithm>

#include "common/thread_fault_notes.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sessions/session_id.hpp"

namespace sessionstream {

MemorySessionStore::MemorySessionStore(SessionStoreConfig config) : config_(config) {
  if (config_.idle_timeout.count() <= 0 || config_.sweep_interval.count() <= 0) {
    throw InvalidArgument("idle_timeout and sweep_interval must be positive, got " +
                          std::to_string(config_.idle_timeout.count()) + " ms and " +
                          std::to_string(config_.sweep_interval.count()) + " ms");
  }
  if (config_.max_history_entries == 0) {
    throw InvalidArgument("max_history_entries must be at least 1, got 0");
  }
  sweeper_ = std::jthread([this](std::stop_token stop) { sweeper_loop(std::move(stop)); });
}

MemorySessionStore::~MemorySessionStore() {
  sweeper_.request_stop();
  wake_.notify_all();
}

void MemorySessionStore::sweeper_loop(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    wake_.wait_for(lock, stop, config_.sweep_interval, [] { return false; });
    if (stop.stop_requested()) break;
    lock.unlock();
    const bool swept = faults_.contain("session store sweeper thread", [this] { (void)sweep(); });
    lock.lock();
    // sweep_interval may be tiny: a fault repeating at once must not spin a core.
    if (!swept) wake_.wait_for(lock, stop, detail::kFaultPause, [] { return false; });
  }
}

MemorySessionStore::Session& MemorySessionStore::session_locked(std::string_view session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) it = sessions_.emplace(std::string{session_id}, Session{}).first;
  it->second.last_used = Clock::now();
  return it->second;
}

void MemorySessionStore::set(std::string_view session_id, std::string_view key, std::string value) {
  validate_session_id(session_id);
  if (value.size() > config_.max_value_bytes) {
    throw PayloadTooLarge("value for key '" + utf8_excerpt(key, 64) + "' is " +
                          std::to_string(value.size()) + " bytes; the maximum is " +
                          std::to_string(config_.max_value_bytes) + " (max_value_bytes)");
  }
  std::lock_guard lock(mutex_);
  auto& values = session_locked(session_id).values;
  const auto it = values.find(key);
  if (it == values.end()) {
    values.emplace(std::string{key}, std::move(value));
  } else {
    it->second = std::move(value);
  }
}

std::optional<std::string> MemorySessionStore::get(std::string_view session_id,
                                                   std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return std::nullopt;
  session->second.last_used = Clock::now();
  const auto it = session->second.values.find(key);
  if (it == session->second.values.end()) return std::nullopt;
  return it->second;
}

bool MemorySessionStore::erase(std::string_view session_id, std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return false;
  const auto it = session->second.values.find(key);
  if (it == session->second.values.end()) return false;
  session->second.values.erase(it);
  return true;
}

std::vector<std::string> MemorySessionStore::keys(std::string_view session_id) {
  std::vector<std::string> result;
  std::lock_guard lock(mutex_);
  const auto session = sessions_.find(session_id);
  if (session == sessions_.end()) return result;
  for (const auto& [key, value] : session->second.values) result.push_back(key);
  return result;
}

std::uint64_t MemorySessionStore::append_history(std::string_view session_id, std::string entry) {
  validate_session_id(session_id);
  if (entry.size() > config_.max_value_bytes) {
    throw PayloadTooLarge("history entry is " + std::to_string(entry.size()) +
                          " bytes; the maximum is " + std::to_string(config_.max_value_bytes) +
                          " (max_value_bytes)");
  }
  std::lock_guard lock(mutex_);
  auto& session = session_locked(session_id);
  if (session.history.size() < config_.max_history_entries) {
    session.history.push_back(std::move(entry));
  } else {
    // Full: overwrite the oldest in place, keeping memory bounded.
    session.history[session.history_start] = std::move(entry);
    session.history_start = (session.history_start + 1) % session.history.size();
  }
  return session.appended++;
}

std::vector<std::string> MemorySessionStore::history(std::string_view session_id,
                                                     std::size_t limit) {
  std::vector<std::string> result;
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return result;
  const Session& session = it->second;
  const std::size_t size = session.history.size();
  const std::size_t count = std::min(limit, size);
  result.reserve(count);
  for (std::size_t i = size - count; i < size; ++i) {
    result.push_back(session.history[(session.history_start + i) % size]);
  }
  return result;
}

void MemorySessionStore::touch(std::string_view session_id) {
  validate_session_id(session_id);
  std::lock_guard lock(mutex_);
  session_locked(session_id);
}

bool MemorySessionStore::erase_session(std::string_view session_id) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return false;
  sessions_.erase(it);
  return true;
}

bool MemorySessionStore::contains(std::string_view session_id) {
  std::lock_guard lock(mutex_);
  return sessions_.find(session_id) != sessions_.end();
}

std::size_t MemorySessionStore::size() {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

std::size_t MemorySessionStore::sweep() {
  const auto cutoff = Clock::now() - config_.idle_timeout;
  std::lock_guard lock(mutex_);
  const auto removed =
      std::erase_if(sessions_, [&](const auto& pair) { return pair.second.last_used < cutoff; });
  swept_total_ += removed;
  return removed;
}

std::uint64_t MemorySessionStore::swept_total() const {
  std::lock_guard lock(mutex_);
  return swept_total_;
}

ThreadFaultReport MemorySessionStore::thread_faults() const {
  return faults_.report();
}

}  // namespace sessionstream
