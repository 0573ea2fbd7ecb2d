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

struct RedisStreamBusConfig {
  Endpoint endpoint;
  // Keys: <prefix>:events (the stream), <prefix>:seq (the counter) and
  // <prefix>:epoch (the cluster epoch, hex). Every node of one cluster uses
  // the same prefix.
  std::string key_prefix = "sessionstream";
  // MAXLEN ~ of the stream: how far back a resume on any node can replay.
  std::size_t max_len = 10'000;
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds io_timeout{2'000};
  // How long a resume from an id this node has not read yet waits for it.
  std::chrono::milliseconds catch_up_timeout{1'000};
};

// Why a stream entry was skipped rather than published.
enum class BusSkipKind : std::uint8_t {
  missing_field,    // c, t, d or j absent (or j not "0"/"1")
  invalid_channel,  // the hub refuses the channel name
  invalid_type,     // the hub refuses the event type
  invalid_utf8,     // type or data not UTF-8
  too_large,        // data over the hub's max_event_bytes
  bad_id,           // the entry id is not <seq>-0
};
inline constexpr std::size_t kBusSkipKinds = 6;
[[nodiscard]] const char* to_string(BusSkipKind kind) noexcept;
using BusSkipCounts = std::array<std::uint64_t, kBusSkipKinds>;

using LogNote = sessionstream::LogNote;

struct RedisStreamBusHealth {
  std::string status;  // "healthy", "degraded", "stopped"
  std::string reason;  // why not healthy
  bool running = false;
  bool connected = false;       // the reader is connected and has adopted the epoch
  std::string epoch;            // cluster epoch (hex), empty while unknown
  std::uint64_t head = 0;       // last seq read from the stream
  std::uint64_t published = 0;  // through this node's publish()
  std::uint64_t received = 0;   // entries read from the stream
  std::uint64_t duplicates = 0;
  std::uint64_t lost = 0;  // events trimmed before this node read them
  BusSkipCounts skipped{};
  std::uint64_t reconnects = 0;  // reader connections made after the first
  std::uint64_t errors = 0;
  std::string last_error;
  std::uint64_t replays = 0;
  std::uint64_t replayed_events = 0;
  std::uint64_t replay_gaps = 0;
  std::string stream_key;
  std::size_t max_len = 0;
  std::string endpoint;  // redacted
  std::size_t connections = 0;
  std::uint64_t log_notes_dropped = 0;
  std::uint64_t log_notes_suppressed = 0;  // repeats of an already noted kind
  ThreadFaultReport thread_faults;         // exceptions contained at native thread boundaries
};

// One id space for every node: events published through any node's bus are
// numbered by one Redis counter and appended to one stream; each node's
// reader thread brings every entry into its hub with that id, so a
// Last-Event-ID from one node resumes exactly on another. Also the hub's
// replay source (XRANGE) for what its history no longer holds. The hub must
// use Sequencing::external and outlive the bus. Thread-safe.
class RedisStreamBus {
 public:
  // Throws InvalidArgument for a bad configuration or a hub that sequences
  // locally. Does not touch the network.
  RedisStreamBus(Hub& hub, RedisStreamBusConfig config);
  ~RedisStreamBus();
  RedisStreamBus(const RedisStreamBus&) = delete;
  RedisStreamBus& operator=(const RedisStreamBus&) = delete;

  // Starts the reader thread and registers the replay source. Idempotent;
  // never throws for Redis being down (the reader keeps retrying, health
  // says degraded).
  void start();
  // Joins the reader, unregisters the replay source, closes connections.
  // Idempotent; also run by the destructor.
  void stop();
  [[nodiscard]] bool running() const;
  // True once the reader is connected and the hub runs in the cluster epoch.
  bool wait_ready(std::chrono::milliseconds timeout) const;

  // Appends an event to the stream and returns its id text; this node's hub
  // delivers it when its reader reads it back, like every other node's.
  // Throws InvalidArgument / InvalidUtf8 / PayloadTooLarge as Hub::publish,
  // Unavailable when Redis cannot be reached or the epoch is not known yet.
  // Any thread; publishes are serialized on one connection.
  std::string publish(std::string_view channel, std::string data, std::string type,
                      bool data_is_json);

  [[nodiscard]] RedisStreamBusHealth health() const;
  [[nodiscard]] std::vector<LogNote> take_log_notes();
  [[nodiscard]] const std::string& stream_key() const noexcept;

 private:
  class Impl;
  // Shared with the hub as its replay source, which may outlive a stop().
  std::shared_ptr<Impl> impl_;
};

}  // namespace sessionstream::redis
