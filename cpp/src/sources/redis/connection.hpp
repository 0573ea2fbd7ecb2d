#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/sources/redis/config.hpp"

struct redisContext;
struct redisReply;

namespace sessionstream::redis {

struct ReplyFree {
  void operator()(redisReply* reply) const noexcept;
};
// One reply tree, freed once.
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// One blocking hiredis connection: connected, authenticated and on its
// database when constructed, freed by its destructor. Not thread-safe: one
// owner thread, or a mutex around it. Any I/O or protocol failure throws
// Unavailable and leaves the connection broken(): make a new one.
class Connection {
 public:
  // Throws Unavailable (unreachable, refused, AUTH/SELECT failed: the message
  // says which, never the password).
  Connection(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout,
             std::chrono::milliseconds io_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one command built from binary-safe arguments and waits for its
  // reply. A Redis error reply is returned as a reply (type REDIS_REPLY_ERROR),
  // not thrown.
  Reply command(const std::vector<std::string_view>& args);
  // Pipelining: append several, then read their replies in order.
  void append(const std::vector<std::string_view>& args);
  Reply read_reply();
  // Waits up to timeout for the next pushed reply (pub/sub); nullopt when
  // nothing came in time (the connection stays usable).
  std::optional<Reply> poll_reply(std::chrono::milliseconds timeout);

  // False when the server has closed its end (restart, CLIENT KILL, idle
  // timeout) or sent something unasked. Cheap, never blocks; only meaningful
  // with no reply outstanding. Lets a caller reconnect before sending a
  // command that must not be retried.
  [[nodiscard]] bool alive() const noexcept;

  [[nodiscard]] bool broken() const noexcept { return broken_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  struct ContextFree {
    void operator()(redisContext* context) const noexcept;
  };
  [[noreturn]] void fail(std::string_view what);

  Endpoint endpoint_;
  std::chrono::milliseconds io_timeout_;
  std::unique_ptr<redisContext, ContextFree> context_;
  bool broken_ = false;
};

// Capped exponential backoff between reconnect attempts.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds first = std::chrono::milliseconds{100},
                   std::chrono::milliseconds cap = std::chrono::milliseconds{5'000});
  [[nodiscard]] std::chrono::milliseconds next();
  void reset() noexcept;

 private:
  std::chrono::milliseconds first_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds current_;
};

}  // namespace sessionstream::redis
