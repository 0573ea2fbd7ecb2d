#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/sessions/session_store.hpp"
#include "sessionstream/sources/redis/config.hpp"

namespace sessionstream::redis {

class Connection;

struct RedisSessionStoreConfig {
  Endpoint endpoint;
  std::string key_prefix = "sessionstream";
  // idle_timeout, max_history_entries and max_value_bytes as for the memory
  // store. sweep_interval is unused: every write and touch sets the session's
  // keys to expire after idle_timeout, so Redis drops idle sessions itself;
  // sweep() only tidies the index of sessions that size() counts.
  SessionStoreConfig store;
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds io_timeout{2'000};
  // CLIENT SETNAME of the connection, so CLIENT LIST shows whose it is; empty
  // sets none. No spaces.
  std::string client_name = "sessionstream-store";
};

struct RedisSessionStoreHealth {
  bool connected = false;
  std::string endpoint;  // redacted URL
  std::string key_prefix;
  std::uint64_t errors = 0;
  std::string last_error;
};

// Session data shared by every node, in Redis under key_prefix:
//   <p>:s:<sid>:kv  HASH of the session's values
//   <p>:s:<sid>:h   LIST, the conversation history (newest last)
//   <p>:s:<sid>:n   entries ever appended (the next entry's index)
//   <p>:sessions    ZSET of session ids scored by last use (server ms)
// Times come from the Redis server's clock, so nodes with skewed clocks agree.
// Several keys are touched per operation by Lua scripts: a standalone Redis
// (or one Cluster slot per prefix) is assumed.
// One connection guarded by a mutex; it is opened on first use, and a call
// that finds it lost reconnects once and retries (append_history only when
// nothing was sent yet, since a retried append could apply twice). Redis
// unreachable: Unavailable.
class RedisSessionStore final : public SessionStore {
 public:
  // Never connects; throws InvalidArgument for a bad prefix or limits.
  explicit RedisSessionStore(RedisSessionStoreConfig config);
  ~RedisSessionStore() override;
  RedisSessionStore(const RedisSessionStore&) = delete;
  RedisSessionStore& operator=(const RedisSessionStore&) = delete;

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

  [[nodiscard]] RedisSessionStoreHealth health() const;
  [[nodiscard]] const RedisSessionStoreConfig& config() const noexcept { return config_; }

 private:
  struct Keys {
    std::string kv, history, counter;
  };
  [[nodiscard]] Keys keys_of(std::string_view session_id) const;
  // Runs fn on a live connection under the mutex. A lost connection is
  // replaced; with retry, fn runs once more on the new one.
  template <class Fn>
  auto with_connection(bool retry, Fn&& fn);
  Connection& connect_locked();
  void note_error_locked(const std::string& text);

  const RedisSessionStoreConfig config_;
  const std::string endpoint_text_;
  const std::string index_key_;
  const std::string ttl_text_;

  mutable std::mutex mutex_;
  std::unique_ptr<Connection> connection_;
  std::uint64_t errors_ = 0;
  std::string last_error_;
};

}  // namespace sessionstream::redis
