#include "sessionstream/sources/redis/session_store.hpp"

#include <hiredis.h>

#include <algorithm>
#include <climits>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sessions/session_id.hpp"
#include "sources/redis/connection.hpp"

namespace sessionstream::redis {

namespace {

// Every script reads the server's clock, so last-use scores mean the same
// whichever node wrote them. KEYS: index, kv, history, counter.
constexpr std::string_view kNow = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// ARGV: sid, ttl ms, only_existing ("1": refresh a session that exists, never create one).
constexpr std::string_view kTouch = R"lua(
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) == 0 then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not score or tonumber(score) < now - tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
)lua";

// ARGV: sid, ttl ms, entry, max entries. Returns the entry's index.
constexpr std::string_view kAppend = R"lua(
local n = redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
redis.call('ZADD', KEYS[1], now, ARGV[1])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return n - 1
)lua";

// ARGV: sid, ttl ms.
constexpr std::string_view kContains = R"lua(
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return 1 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) >= now - tonumber(ARGV[2]) then return 1 end
return 0
)lua";

// KEYS: index. ARGV: ttl ms.
constexpr std::string_view kSize = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
return redis.call('ZCARD', KEYS[1])
)lua";

// KEYS: index. ARGV: ttl ms, key prefix, batch size. The session keys are
// derived here, atomically with the index check, so a session another node
// touched meanwhile is never removed.
constexpr std::string_view kSweep = R"lua(
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])),
                       'LIMIT', 0, tonumber(ARGV[3]))
for _, sid in ipairs(ids) do
  local base = ARGV[2] .. ':s:' .. sid
  redis.call('DEL', base .. ':kv', base .. ':h', base .. ':n')
  redis.call('ZREM', KEYS[1], sid)
end
return #ids
)lua";

constexpr std::size_t kSweepBatch = 1000;

std::string script(std::string_view body) {
  std::string text{kNow};
  text += body;
  return text;
}

std::string_view text_of(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view{} : std::string_view{reply.str, reply.len};
}

// Appends every command, then reads every reply, so one error reply never
// leaves later replies unread on the connection; then refuses error replies.
std::vector<Reply> pipeline(Connection& connection,
                            const std::vector<std::vector<std::string_view>>& commands) {
  for (const auto& command : commands) connection.append(command);
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) replies.push_back(connection.read_reply());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i]->type == REDIS_REPLY_ERROR) {
      throw Unavailable("Redis refused " + std::string{commands[i].front()} + ": " +
                        std::string{text_of(*replies[i])});
    }
  }
  return replies;
}

Reply single(Connection& connection, const std::vector<std::string_view>& command) {
  auto replies = pipeline(connection, {command});
  return std::move(replies.front());
}

long long integer_of(const redisReply& reply) {
  return reply.type == REDIS_REPLY_INTEGER ? reply.integer : 0;
}

}  // namespace

RedisSessionStore::RedisSessionStore(RedisSessionStoreConfig config)
    : config_(std::move(config)),
      endpoint_text_(config_.endpoint.redacted()),
      index_key_(config_.key_prefix + ":sessions"),
      ttl_text_(std::to_string(config_.store.idle_timeout.count())) {
  const auto& prefix = config_.key_prefix;
  const bool printable =
      std::all_of(prefix.begin(), prefix.end(), [](char c) { return c > 0x20 && c < 0x7F; });
  if (prefix.empty() || prefix.size() > 128 || !printable) {
    throw InvalidArgument("key_prefix '" + utf8_excerpt(prefix, 80) +
                          "' is invalid: use 1-128 printable ASCII characters without spaces");
  }
  if (config_.store.idle_timeout.count() <= 0) {
    throw InvalidArgument("idle_timeout must be positive, got " +
                          std::to_string(config_.store.idle_timeout.count()) + " ms");
  }
  if (config_.store.max_history_entries == 0) {
    throw InvalidArgument("max_history_entries must be at least 1, got 0");
  }
  const auto& name = config_.client_name;
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7F; })) {
    throw InvalidArgument("client_name '" + utf8_excerpt(name, 40) +
                          "' is invalid: use printable ASCII without spaces");
  }
  if (config_.connect_timeout.count() <= 0 || config_.io_timeout.count() <= 0) {
    throw InvalidArgument("connect_timeout and io_timeout must be positive");
  }
}

RedisSessionStore::~RedisSessionStore() = default;

RedisSessionStore::Keys RedisSessionStore::keys_of(std::string_view session_id) const {
  std::string base = config_.key_prefix + ":s:";
  base += session_id;
  return {base + ":kv", base + ":h", base + ":n"};
}

void RedisSessionStore::note_error_locked(const std::string& text) {
  ++errors_;
  last_error_ = text;
}

Connection& RedisSessionStore::connect_locked() {
  if (connection_ && !connection_->broken() && connection_->alive()) return *connection_;
  connection_.reset();
  try {
    auto fresh =
        std::make_unique<Connection>(config_.endpoint, config_.connect_timeout, config_.io_timeout);
    if (!config_.client_name.empty()) single(*fresh, {"CLIENT", "SETNAME", config_.client_name});
    connection_ = std::move(fresh);
  } catch (const Unavailable& e) {
    note_error_locked(e.what());
    throw Unavailable(std::string{"session store unavailable: "} + e.what());
  }
  return *connection_;
}

template <class Fn>
auto RedisSessionStore::with_connection(bool retry, Fn&& fn) {
  std::lock_guard lock(mutex_);
  {
    Connection& connection = connect_locked();
    try {
      return fn(connection);
    } catch (const Unavailable& e) {
      note_error_locked(e.what());
      // An error reply leaves the connection in order: nothing to retry.
      if (!connection.broken()) throw;
      connection_.reset();
      if (!retry) {
        throw Unavailable(std::string{"session store unavailable (the call may or may not have "
                                      "been applied): "} +
                          e.what());
      }
    }
  }
  Connection& connection = connect_locked();
  try {
    return fn(connection);
  } catch (const Unavailable& e) {
    note_error_locked(e.what());
    if (connection.broken()) connection_.reset();
    throw Unavailable(std::string{"session store unavailable: "} + e.what());
  }
}

void RedisSessionStore::set(std::string_view session_id, std::string_view key, std::string value) {
  validate_session_id(session_id);
  if (value.size() > config_.store.max_value_bytes) {
    throw PayloadTooLarge("value for key '" + utf8_excerpt(key, 64) + "' is " +
                          std::to_string(value.size()) + " bytes; the maximum is " +
                          std::to_string(config_.store.max_value_bytes) + " (max_value_bytes)");
  }
  const Keys k = keys_of(session_id);
  static const std::string touch = script(kTouch);
  with_connection(true, [&](Connection& c) {
    pipeline(c, {{"HSET", k.kv, key, value},
                 {"EVAL", touch, "4", index_key_, k.kv, k.history, k.counter, session_id, ttl_text_,
                  "0"}});
    return 0;
  });
}

std::optional<std::string> RedisSessionStore::get(std::string_view session_id,
                                                  std::string_view key) {
  if (!is_valid_session_id(session_id)) return std::nullopt;
  const Keys k = keys_of(session_id);
  static const std::string touch = script(kTouch);
  return with_connection(true, [&](Connection& c) -> std::optional<std::string> {
    const auto replies = pipeline(c, {{"HGET", k.kv, key},
                                      {"EVAL", touch, "4", index_key_, k.kv, k.history, k.counter,
                                       session_id, ttl_text_, "1"}});
    const redisReply& value = *replies.front();
    if (value.type != REDIS_REPLY_STRING) return std::nullopt;
    return std::string{text_of(value)};
  });
}

bool RedisSessionStore::erase(std::string_view session_id, std::string_view key) {
  if (!is_valid_session_id(session_id)) return false;
  const Keys k = keys_of(session_id);
  static const std::string touch = script(kTouch);
  return with_connection(true, [&](Connection& c) {
    const auto replies = pipeline(c, {{"HDEL", k.kv, key},
                                      {"EVAL", touch, "4", index_key_, k.kv, k.history, k.counter,
                                       session_id, ttl_text_, "1"}});
    return integer_of(*replies.front()) > 0;
  });
}

std::vector<std::string> RedisSessionStore::keys(std::string_view session_id) {
  if (!is_valid_session_id(session_id)) return {};
  const Keys k = keys_of(session_id);
  auto result = with_connection(true, [&](Connection& c) {
    const Reply reply = single(c, {"HKEYS", k.kv});
    std::vector<std::string> out;
    if (reply->type != REDIS_REPLY_ARRAY) return out;
    out.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
      out.emplace_back(text_of(*reply->element[i]));
    }
    return out;
  });
  std::sort(result.begin(), result.end());
  return result;
}

std::uint64_t RedisSessionStore::append_history(std::string_view session_id, std::string entry) {
  validate_session_id(session_id);
  if (entry.size() > config_.store.max_value_bytes) {
    throw PayloadTooLarge("history entry is " + std::to_string(entry.size()) +
                          " bytes; the maximum is " +
                          std::to_string(config_.store.max_value_bytes) + " (max_value_bytes)");
  }
  const Keys k = keys_of(session_id);
  static const std::string append = script(kAppend);
  const std::string max = std::to_string(config_.store.max_history_entries);
  // Not retried once sent: INCR would count the entry twice.
  return with_connection(false, [&](Connection& c) {
    const Reply reply = single(c, {"EVAL", append, "4", index_key_, k.kv, k.history, k.counter,
                                   session_id, ttl_text_, entry, max});
    return static_cast<std::uint64_t>(std::max<long long>(integer_of(*reply), 0));
  });
}

std::vector<std::string> RedisSessionStore::history(std::string_view session_id,
                                                    std::size_t limit) {
  if (limit == 0 || !is_valid_session_id(session_id)) return {};
  const Keys k = keys_of(session_id);
  const auto capped = std::min<std::size_t>(limit, static_cast<std::size_t>(LLONG_MAX));
  const std::string start = "-" + std::to_string(capped);
  return with_connection(true, [&](Connection& c) {
    const Reply reply = single(c, {"LRANGE", k.history, start, "-1"});
    std::vector<std::string> out;
    if (reply->type != REDIS_REPLY_ARRAY) return out;
    out.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
      out.emplace_back(text_of(*reply->element[i]));
    }
    return out;
  });
}

void RedisSessionStore::touch(std::string_view session_id) {
  validate_session_id(session_id);
  const Keys k = keys_of(session_id);
  static const std::string touch = script(kTouch);
  with_connection(true, [&](Connection& c) {
    single(c, {"EVAL", touch, "4", index_key_, k.kv, k.history, k.counter, session_id, ttl_text_,
               "0"});
    return 0;
  });
}

bool RedisSessionStore::erase_session(std::string_view session_id) {
  if (!is_valid_session_id(session_id)) return false;
  const Keys k = keys_of(session_id);
  return with_connection(true, [&](Connection& c) {
    const auto replies =
        pipeline(c, {{"DEL", k.kv, k.history, k.counter}, {"ZREM", index_key_, session_id}});
    return integer_of(*replies[0]) > 0 || integer_of(*replies[1]) > 0;
  });
}

bool RedisSessionStore::contains(std::string_view session_id) {
  if (!is_valid_session_id(session_id)) return false;
  const Keys k = keys_of(session_id);
  static const std::string contains = script(kContains);
  return with_connection(true, [&](Connection& c) {
    const Reply reply = single(
        c, {"EVAL", contains, "4", index_key_, k.kv, k.history, k.counter, session_id, ttl_text_});
    return integer_of(*reply) == 1;
  });
}

std::size_t RedisSessionStore::size() {
  static const std::string size = script(kSize);
  return with_connection(true, [&](Connection& c) {
    const Reply reply = single(c, {"EVAL", size, "1", index_key_, ttl_text_});
    return static_cast<std::size_t>(std::max<long long>(integer_of(*reply), 0));
  });
}

std::size_t RedisSessionStore::sweep() {
  static const std::string sweep = script(kSweep);
  const std::string batch = std::to_string(kSweepBatch);
  std::size_t total = 0;
  while (true) {
    const auto removed = with_connection(true, [&](Connection& c) {
      const Reply reply =
          single(c, {"EVAL", sweep, "1", index_key_, ttl_text_, config_.key_prefix, batch});
      return static_cast<std::size_t>(std::max<long long>(integer_of(*reply), 0));
    });
    total += removed;
    if (removed < kSweepBatch) return total;
  }
}

RedisSessionStoreHealth RedisSessionStore::health() const {
  RedisSessionStoreHealth h;
  h.endpoint = endpoint_text_;
  h.key_prefix = config_.key_prefix;
  std::lock_guard lock(mutex_);
  h.connected = connection_ && !connection_->broken() && connection_->alive();
  h.errors = errors_;
  h.last_error = last_error_;
  return h;
}

}  // namespace sessionstream::redis
