#include "sessionstream/sources/redis/source.hpp"

#include <hiredis.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "common/log_notes.hpp"
#include "common/thread_fault_notes.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/json_check.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sources/redis/connection.hpp"

namespace sessionstream::redis {

namespace {

using namespace std::chrono_literals;

bool is_pattern(std::string_view name) noexcept {
  return name.find_first_of("*?[") != std::string_view::npos;
}

// A Redis channel name fit for a log line: cut, invalid UTF-8 replaced and
// control characters escaped.
std::string escaped_excerpt(std::string_view text) {
  const std::string excerpt = utf8_excerpt(text, 80);
  std::string out;
  out.reserve(excerpt.size());
  constexpr char kHex[] = "0123456789abcdef";
  for (const char c : excerpt) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  if (excerpt.size() < text.size()) out += "...";
  return out;
}

std::string_view reply_text(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view{} : std::string_view{reply.str, reply.len};
}

using sessionstream::detail::NoteLog;

}  // namespace

bool is_json(std::string_view text) noexcept {
  // Redis payloads keep the tighter nesting bound sources/redis/source.hpp documents.
  return is_valid_json(text, 128);
}

PayloadFormat parse_payload_format(std::string_view text) {
  if (text == "auto") return PayloadFormat::auto_detect;
  if (text == "json") return PayloadFormat::json;
  if (text == "text") return PayloadFormat::text;
  throw InvalidArgument("payload format '" + utf8_excerpt(text, 40) +
                        "' is invalid: use 'auto', 'json' or 'text'");
}

const char* to_string(PayloadFormat format) noexcept {
  switch (format) {
    case PayloadFormat::auto_detect:
      return "auto";
    case PayloadFormat::json:
      return "json";
    case PayloadFormat::text:
      return "text";
  }
  return "auto";
}

const char* to_string(SkipKind kind) noexcept {
  switch (kind) {
    case SkipKind::invalid_channel:
      return "invalid_channel";
    case SkipKind::too_large:
      return "too_large";
    case SkipKind::invalid_utf8:
      return "invalid_utf8";
    case SkipKind::bad_json:
      return "bad_json";
  }
  return "unknown";
}

ChannelTemplate::ChannelTemplate(std::string_view text) : text_(text) {
  std::string literal;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal.push_back(c);
      ++i;
      continue;
    }
    if (c == '}') {
      throw InvalidArgument("channel template '" + utf8_excerpt(text, 80) +
                            "' has an unpaired '}': write '}}' for a literal brace");
    }
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    const auto close = text.find('}', i);
    const std::string_view name =
        close == std::string_view::npos ? text.substr(i + 1) : text.substr(i + 1, close - i - 1);
    if (close == std::string_view::npos || name != "channel") {
      throw InvalidArgument("channel template '" + utf8_excerpt(text, 80) + "': placeholder '{" +
                            utf8_excerpt(name, 40) +
                            "}' is unknown: use {channel} (the Redis channel), {{ and }} for "
                            "literal braces");
    }
    if (!literal.empty()) segments_.push_back({false, std::exchange(literal, {})});
    segments_.push_back({true, {}});
    i = close;
  }
  if (!literal.empty()) segments_.push_back({false, std::move(literal)});
}

std::string ChannelTemplate::render(std::string_view channel) const {
  std::string out;
  for (const auto& segment : segments_) {
    if (segment.placeholder) {
      out += channel;
    } else {
      out += segment.literal;
    }
  }
  return out;
}

struct RedisSource::Impl {
  Impl(Hub& hub_ref, RedisSourceConfig cfg);

  void run(const std::stop_token& stop);
  void serve(Connection& connection, const std::stop_token& stop);
  void on_reply(const redisReply& reply);
  void on_message(std::string_view channel, std::string_view payload);
  void skip(SkipKind kind, std::string_view channel, const std::string& detail);
  void set_disconnected(std::string reason);

  Hub& hub;
  const RedisSourceConfig config;
  const ChannelTemplate channel_template;
  const std::string endpoint_text;
  std::vector<std::string> channels;       // SUBSCRIBE
  std::vector<std::string> glob_patterns;  // PSUBSCRIBE
  NoteLog notes;
  ThreadFaults faults;  // the reader thread

  mutable std::mutex lifecycle_mutex;  // start/stop
  std::jthread thread;
  std::atomic<bool> running{false};

  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> published{0};
  std::array<std::atomic<std::uint64_t>, kSkipKinds> skipped{};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> errors{0};

  // Connection state: written by the reader thread, read by health().
  mutable std::mutex state_mutex;
  mutable std::condition_variable_any state_cv;
  bool connected = false;
  bool hub_closed = false;
  std::size_t confirmations = 0;  // subscribe replies on this connection
  std::size_t subscriptions = 0;  // Redis's count in the latest reply
  std::string reason;
  std::string last_error;
};

RedisSource::Impl::Impl(Hub& hub_ref, RedisSourceConfig cfg)
    : hub(hub_ref),
      config(std::move(cfg)),
      channel_template(config.channel),
      endpoint_text(config.endpoint.redacted()) {
  if (config.patterns.empty()) {
    throw InvalidArgument("RedisSource needs at least one channel or pattern, got none");
  }
  std::set<std::string_view> seen;
  for (const auto& pattern : config.patterns) {
    if (pattern.empty()) throw InvalidArgument("RedisSource: a channel or pattern is empty");
    if (!seen.insert(pattern).second) continue;
    (is_pattern(pattern) ? glob_patterns : channels).push_back(pattern);
  }
  if (config.poll_timeout.count() <= 0 || config.connect_timeout.count() <= 0) {
    throw InvalidArgument("connect_timeout and poll_timeout must be positive");
  }
  const auto& name = config.client_name;
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7F; })) {
    throw InvalidArgument("client_name '" + utf8_excerpt(name, 40) +
                          "' is invalid: use printable ASCII without spaces");
  }
  // The event type is fixed: refuse a bad one now rather than skip every message.
  hub.validate_event("x", {}, config.event_type);
}

void RedisSource::Impl::skip(SkipKind kind, std::string_view channel, const std::string& detail) {
  skipped[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  notes.once("warning", std::string{"skip."} + to_string(kind),
             "redis source: skipped a message on Redis channel '" + escaped_excerpt(channel) +
                 "' (" + to_string(kind) + "): " + detail +
                 "; further messages of this kind are counted in health, not logged");
}

void RedisSource::Impl::on_message(std::string_view channel, std::string_view payload) {
  received.fetch_add(1, std::memory_order_relaxed);
  std::string mapped = channel_template.render(channel);
  const HubConfig& limits = hub.config();
  if (payload.size() > limits.max_event_bytes) {
    skip(SkipKind::too_large, channel,
         "payload is " + std::to_string(payload.size()) + " bytes; the hub's max_event_bytes is " +
             std::to_string(limits.max_event_bytes));
    return;
  }
  bool as_json = false;
  switch (config.payload) {
    case PayloadFormat::auto_detect:
      as_json = is_json(payload);
      break;
    case PayloadFormat::json:
      if (!is_json(payload)) {
        skip(SkipKind::bad_json, channel, "payload is not JSON (payload format json)");
        return;
      }
      as_json = true;
      break;
    case PayloadFormat::text:
      break;
  }
  try {
    hub.publish(mapped, std::string{payload}, config.event_type, as_json);
    published.fetch_add(1, std::memory_order_relaxed);
  } catch (const InvalidUtf8& e) {
    skip(SkipKind::invalid_utf8, channel, e.what());
  } catch (const PayloadTooLarge& e) {
    skip(SkipKind::too_large, channel, e.what());
  } catch (const InvalidArgument& e) {
    // The event type was checked at construction: only the channel is left.
    skip(SkipKind::invalid_channel, channel, e.what());
  }
}

void RedisSource::Impl::on_reply(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR) {
    throw Unavailable("Redis at " + endpoint_text +
                      " refused the subscription: " + std::string{reply_text(reply)});
  }
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3 ||
      reply.element[0]->type != REDIS_REPLY_STRING) {
    return;  // nothing a subscribed connection should see; ignored
  }
  const std::string_view kind = reply_text(*reply.element[0]);
  if (kind == "message") {
    on_message(reply_text(*reply.element[1]), reply_text(*reply.element[2]));
  } else if (kind == "pmessage" && reply.elements >= 4) {
    on_message(reply_text(*reply.element[2]), reply_text(*reply.element[3]));
  } else if (kind == "subscribe" || kind == "psubscribe") {
    bool now_connected = false;
    {
      std::lock_guard lock(state_mutex);
      ++confirmations;
      if (reply.element[2]->type == REDIS_REPLY_INTEGER) {
        subscriptions = static_cast<std::size_t>(std::max<long long>(reply.element[2]->integer, 0));
      }
      if (!connected && confirmations >= channels.size() + glob_patterns.size()) {
        connected = true;
        now_connected = true;
        reason.clear();
      }
    }
    if (now_connected) state_cv.notify_all();
  }
}

void RedisSource::Impl::set_disconnected(std::string why) {
  std::lock_guard lock(state_mutex);
  connected = false;
  confirmations = 0;
  subscriptions = 0;
  reason = std::move(why);
}

void RedisSource::Impl::serve(Connection& connection, const std::stop_token& stop) {
  auto subscribe = [&](const char* command, const std::vector<std::string>& names) {
    if (names.empty()) return;
    std::vector<std::string_view> args{command};
    args.insert(args.end(), names.begin(), names.end());
    connection.append(args);
  };
  // Its +OK reply is not an array, so on_reply passes over it.
  if (!config.client_name.empty()) connection.append({"CLIENT", "SETNAME", config.client_name});
  subscribe("SUBSCRIBE", channels);
  subscribe("PSUBSCRIBE", glob_patterns);
  while (!stop.stop_requested()) {
    if (auto reply = connection.poll_reply(config.poll_timeout)) on_reply(**reply);
  }
}

void RedisSource::Impl::run(const std::stop_token& stop) {
  static constexpr std::string_view kWhere = "redis source reader thread";
  Backoff backoff;
  bool ever_connected = false;
  bool finished = false;  // the hub closed
  const auto io_timeout = std::max<std::chrono::milliseconds>(config.connect_timeout, 1s);
  while (!stop.stop_requested() && !finished) {
    // Redis's own errors are handled inside; anything else abandons this
    // connection (and the message in hand) and the reader connects again.
    const bool ok = sessionstream::detail::contain_noted(faults, notes, kWhere, [&] {
      try {
        Connection connection(config.endpoint, config.connect_timeout, io_timeout);
        if (ever_connected) {
          reconnects.fetch_add(1, std::memory_order_relaxed);
          notes.always("info", "connection.restored",
                       "redis source: connected to " + endpoint_text + " again");
        }
        ever_connected = true;
        notes.rearm("connection.");
        backoff.reset();
        serve(connection, stop);
      } catch (const Closed&) {
        notes.once("info", "hub.closed",
                   "the hub is closed; Redis messages are no longer published");
        std::lock_guard lock(state_mutex);
        hub_closed = true;
        connected = false;
        reason = "the hub is closed";
        finished = true;
        return;
      } catch (const Error& e) {
        errors.fetch_add(1, std::memory_order_relaxed);
        const auto wait = backoff.next();
        const std::string text = e.what();
        notes.once("warning", "connection.lost",
                   "redis source: " + text + "; reconnecting with backoff (noted once per outage)");
        set_disconnected("not connected to Redis (" + text + "); retrying in " +
                         std::to_string(wait.count()) + " ms");
        std::unique_lock lock(state_mutex);
        last_error = text;
        state_cv.wait_for(lock, stop, wait, [] { return false; });
        return;
      }
      set_disconnected("the Redis source is stopping");
    });
    if (!ok) {
      (void)faults.contain(kWhere, [&] {
        set_disconnected("reconnecting to Redis at " + endpoint_text + " after a fault");
      });
      sessionstream::detail::pause_after_fault(stop);
    }
  }
}

RedisSource::RedisSource(Hub& hub, RedisSourceConfig config)
    : impl_(std::make_unique<Impl>(hub, std::move(config))) {}

RedisSource::~RedisSource() {
  stop();
}

void RedisSource::start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.running.load()) return;
  s.set_disconnected("connecting to Redis at " + s.endpoint_text);
  s.running.store(true);
  s.thread = std::jthread([&s](std::stop_token stop) { s.run(stop); });
}

void RedisSource::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (!s.running.load()) return;
  s.thread.request_stop();
  if (s.thread.joinable()) s.thread.join();
  s.set_disconnected("the Redis source is not running");
  s.running.store(false);
}

bool RedisSource::running() const {
  return impl_->running.load();
}

bool RedisSource::wait_connected(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->state_mutex);
  return impl_->state_cv.wait_for(lock, timeout, [this] { return impl_->connected; });
}

RedisSourceHealth RedisSource::health() const {
  const Impl& s = *impl_;
  RedisSourceHealth h;
  h.running = s.running.load();
  h.patterns = s.config.patterns;
  h.endpoint = s.endpoint_text;
  h.received = s.received.load();
  h.published = s.published.load();
  for (std::size_t i = 0; i < kSkipKinds; ++i) h.skipped[i] = s.skipped[i].load();
  h.reconnects = s.reconnects.load();
  h.errors = s.errors.load();
  h.log_notes_dropped = s.notes.dropped();
  h.log_notes_suppressed = s.notes.suppressed();
  h.thread_faults = s.faults.report();
  bool hub_closed = false;
  {
    std::lock_guard lock(s.state_mutex);
    h.connected = s.connected;
    h.subscriptions = s.subscriptions;
    h.reason = s.reason;
    h.last_error = s.last_error;
    hub_closed = s.hub_closed;
  }
  h.connections = h.connected ? 1 : 0;
  if (!h.running || hub_closed) {
    h.status = "stopped";
    if (!h.running) h.reason = "the Redis source is not running";
  } else if (!h.connected) {
    h.status = "degraded";
  } else {
    h.status = "healthy";
  }
  sessionstream::detail::degrade_on_fault(h.thread_faults, h.status, h.reason);
  return h;
}

std::vector<LogNote> RedisSource::take_log_notes() {
  return impl_->notes.take();
}

}  // namespace sessionstream::redis
