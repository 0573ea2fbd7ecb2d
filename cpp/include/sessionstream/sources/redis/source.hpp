#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/common/log_note.hpp"
#include "sessionstream/common/thread_faults.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/redis/config.hpp"

namespace sessionstream::redis {

// How a message's payload becomes event data.
enum class PayloadFormat {
  auto_detect,  // JSON when the payload parses as JSON, text otherwise
  json,         // must be JSON; anything else is skipped as bad_json
  text,         // never embedded as JSON
};
// "auto", "json" or "text"; throws InvalidArgument otherwise.
[[nodiscard]] PayloadFormat parse_payload_format(std::string_view text);
[[nodiscard]] const char* to_string(PayloadFormat format) noexcept;

// Why a message was skipped rather than published.
enum class SkipKind : std::uint8_t {
  invalid_channel,  // the mapped channel is not a valid hub channel name
  too_large,        // the payload exceeds the hub's max_event_bytes
  invalid_utf8,     // the payload is not valid UTF-8 (frames are UTF-8 text)
  bad_json,         // payload format json and the payload is not JSON
};
inline constexpr std::size_t kSkipKinds = 4;
[[nodiscard]] const char* to_string(SkipKind kind) noexcept;
using SkipCounts = std::array<std::uint64_t, kSkipKinds>;

using LogNote = sessionstream::LogNote;

// True when text is exactly one JSON value (RFC 8259), nesting at most 128 deep.
[[nodiscard]] bool is_json(std::string_view text) noexcept;

// Maps a Redis channel name to a hub channel: "{channel}" is the Redis
// channel's name, "{{" and "}}" are literal braces, anything else is literal.
class ChannelTemplate {
 public:
  // Throws InvalidArgument for an unknown placeholder or an unpaired brace.
  explicit ChannelTemplate(std::string_view text);
  [[nodiscard]] std::string render(std::string_view channel) const;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  struct Segment {
    bool placeholder = false;
    std::string literal;
  };
  std::string text_;
  std::vector<Segment> segments_;
};

struct RedisSourceConfig {
  Endpoint endpoint;
  // A pattern holding * ? or [ is PSUBSCRIBEd, anything else SUBSCRIBEd.
  std::vector<std::string> patterns;
  std::string channel = "{channel}";
  std::string event_type = "message";
  PayloadFormat payload = PayloadFormat::auto_detect;
  std::chrono::milliseconds connect_timeout{2'000};
  // CLIENT SETNAME of the pub/sub connection, so CLIENT LIST shows whose it
  // is; empty sets none. No spaces.
  std::string client_name = "sessionstream-source";
  // How long one read waits for a message: bounds how long stop() takes.
  std::chrono::milliseconds poll_timeout{200};
};

struct RedisSourceHealth {
  std::string status;  // "healthy", "degraded", "stopped"
  std::string reason;  // why degraded or stopped
  bool running = false;
  bool connected = false;  // subscribed to every pattern
  std::vector<std::string> patterns;
  std::size_t subscriptions = 0;  // confirmed by Redis on the current connection
  std::size_t connections = 0;    // 1 while connected, else 0
  std::uint64_t received = 0;
  std::uint64_t published = 0;
  SkipCounts skipped{};
  std::uint64_t reconnects = 0;
  std::uint64_t errors = 0;
  std::string last_error;
  std::string endpoint;  // redacted URL
  std::uint64_t log_notes_dropped = 0;
  std::uint64_t log_notes_suppressed = 0;  // repeats of an already noted kind
  ThreadFaultReport thread_faults;         // exceptions contained at native thread boundaries
};

// Node mode: one pub/sub connection per source and process, however many hub
// subscribers read the channels it feeds. One std::jthread connects,
// subscribes, reads pushed messages and publishes each into the hub on the
// channel the template names; on a lost connection it reconnects with
// backoff and subscribes again (messages published meanwhile are lost: Redis
// pub/sub keeps nothing). It never calls into the host.
// start/stop/health are thread-safe. The hub must outlive the source.
class RedisSource {
 public:
  // Throws InvalidArgument for no patterns, an empty pattern, a bad template
  // or event type.
  RedisSource(Hub& hub, RedisSourceConfig config);
  ~RedisSource();
  RedisSource(const RedisSource&) = delete;
  RedisSource& operator=(const RedisSource&) = delete;

  // Starts the reader thread and returns at once; connecting happens there,
  // so Redis being down is reported by health(), never thrown. Idempotent.
  void start();
  // Stops reading, closes the connection, joins. Idempotent; also run by the
  // destructor.
  void stop();
  [[nodiscard]] bool running() const;
  // Waits until subscribed to every pattern.
  bool wait_connected(std::chrono::milliseconds timeout) const;

  [[nodiscard]] RedisSourceHealth health() const;
  [[nodiscard]] std::vector<LogNote> take_log_notes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::redis
