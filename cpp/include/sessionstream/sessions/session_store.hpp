#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sessionstream/common/thread_faults.hpp"

namespace sessionstream {

struct SessionStoreConfig {
  std::chrono::milliseconds idle_timeout{3'600'000};  // seed 000: 1 hour
  std::chrono::milliseconds sweep_interval{300'000};  // seed 000: every 5 minutes
  std::size_t max_history_entries = 1000;             // per session; oldest dropped
  std::size_t max_value_bytes = 1 << 20;
};

// Per-session key/value data and append-only conversation history with an
// idle TTL. Every method is safe from any thread and never blocks on I/O of
// the caller's, so async code needs no lock of its own. Implementations: the
// in-memory store below; a shared store (Redis) implements the same interface.
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  virtual void set(std::string_view session_id, std::string_view key, std::string value) = 0;
  [[nodiscard]] virtual std::optional<std::string> get(std::string_view session_id,
                                                       std::string_view key) = 0;
  virtual bool erase(std::string_view session_id, std::string_view key) = 0;
  [[nodiscard]] virtual std::vector<std::string> keys(std::string_view session_id) = 0;

  // Returns the entry's index in the session's history.
  virtual std::uint64_t append_history(std::string_view session_id, std::string entry) = 0;
  // The newest `limit` entries, oldest first.
  [[nodiscard]] virtual std::vector<std::string> history(std::string_view session_id,
                                                         std::size_t limit) = 0;

  virtual void touch(std::string_view session_id) = 0;
  virtual bool erase_session(std::string_view session_id) = 0;
  [[nodiscard]] virtual bool contains(std::string_view session_id) = 0;
  [[nodiscard]] virtual std::size_t size() = 0;
  // Removes sessions idle longer than the timeout; returns how many.
  virtual std::size_t sweep() = 0;
};

// In-memory store with a native sweeper thread that wakes every
// sweep_interval and stops promptly on destruction.
class MemorySessionStore final : public SessionStore {
 public:
  explicit MemorySessionStore(SessionStoreConfig config = {});
  ~MemorySessionStore() override;
  MemorySessionStore(const MemorySessionStore&) = delete;
  MemorySessionStore& operator=(const MemorySessionStore&) = delete;

  void set(std::string_view session_id, std::string_view key, std::string value) override;
  std::optional<std::string> get(std::string_view session_id, std::string_view key) override;
  bool erase(std::string_view session_id, std::string_view key) override;
  std::vector<std::string> keys(std::string_view session_id) override;
  std::uint64_t append_history(std::string_view session_id, std::string entry) override;
  std::vector<std::string> history(std::string_view session_id, std::size_t limit) override;
  void touch(std::string_view session_id) override;
  bool erase_session(std::string_view session_id) override;
  bool contains(std::string_view session_id) override;
  std::size_t size() override;
  std::size_t sweep() override;

  [[nodiscard]] std::uint64_t swept_total() const;
  // Exceptions the sweeper thread contained (it keeps sweeping after one).
  [[nodiscard]] ThreadFaultReport thread_faults() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Session {
    std::map<std::string, std::string, std::less<>> values;
    std::vector<std::string> history;  // ring once full, see history_start
    std::size_t history_start = 0;
    std::uint64_t appended = 0;
    Clock::time_point last_used;
  };

  Session& session_locked(std::string_view session_id);
  void sweeper_loop(std::stop_token stop);

  const SessionStoreConfig config_;
  mutable std::mutex mutex_;
  std::map<std::string, Session, std::less<>> sessions_;
  std::uint64_t swept_total_ = 0;
  std::condition_variable_any wake_;
  ThreadFaults faults_;
  std::jthread sweeper_;  // last member: joins before the state above is destroyed
};

}  // namespace sessionstream
