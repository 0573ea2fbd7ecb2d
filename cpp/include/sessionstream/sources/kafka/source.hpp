#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/common/thread_faults.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/kafka/config.hpp"
#include "sessionstream/sources/kafka/router.hpp"

namespace sessionstream::kafka {

enum class StartPosition { latest, earliest };

// "latest" or "earliest"; anything else raises InvalidArgument.
[[nodiscard]] StartPosition parse_start_position(std::string_view text);

struct KafkaSourceConfig {
  // librdkafka properties applied over consumer_defaults(); must name
  // bootstrap.servers. group.id is ignored: the node's group is derived below.
  Properties properties;
  std::vector<std::string> topics;
  std::string channel = "{topic}";     // channel template (see Template)
  std::string event_type = "message";  // event type template
  PayloadFormat payload = PayloadFormat::auto_detect;
  std::string group_prefix = "sessionstream";
  // Names this process's group "<group_prefix>-node-<node_id>"; empty picks
  // hostname-pid, so two processes never share a group and each sees every record.
  std::string node_id;
  // Where a partition starts the first time this process is assigned it.
  StartPosition start = StartPosition::latest;
  // Resume beyond the hub's history: positions of this many events per channel
  // (and of at most replay_max_channels channels) are kept; a resume further
  // back than that gets a gap.
  std::size_t replay_max_events = 10'000;
  std::size_t replay_max_channels = 100'000;
  // ... and of at most this many events over all channels, oldest first.
  std::size_t replay_max_total_events = 1'000'000;
  std::chrono::milliseconds replay_timeout{2'000};
  std::chrono::milliseconds poll_timeout{100};
};

struct PartitionStatus {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t next_offset = -1;     // next offset this process will publish from; -1 unknown
  std::int64_t high_watermark = -1;  // -1 unknown
  std::int64_t lag = -1;             // high_watermark - next_offset; -1 unknown
};

// Seek-and-replay on resume and the index of offsets it seeks from.
struct KafkaReplayHealth {
  std::uint64_t replays = 0;
  std::uint64_t replayed_events = 0;
  std::uint64_t gaps = 0;
  std::size_t index_channels = 0;
  std::size_t index_entries = 0;
  std::uint64_t index_evicted = 0;  // dropped to keep within replay_max_total_events
};

struct KafkaSourceHealth {
  std::string status;  // "healthy", "degraded", "stopped"
  std::string reason;  // why degraded
  bool running = false;
  bool ready = false;  // partitions assigned with known positions
  std::string group_id;
  std::vector<std::string> topics;
  std::size_t consumers = 0;
  std::vector<PartitionStatus> assignments;
  std::uint64_t received = 0;
  std::uint64_t published = 0;
  std::uint64_t duplicates = 0;  // re-delivered records below the published position
  SkipCounts skipped{};
  std::uint64_t errors = 0;
  std::string last_error;
  KafkaReplayHealth replay;
  std::uint64_t log_notes_dropped = 0;
  std::uint64_t log_notes_suppressed = 0;  // repeats of an already noted kind
  ThreadFaultReport thread_faults;         // exceptions contained at native thread boundaries
};

// Node mode: one consumer per source and process for its topic set, in a group
// of its own, publishing every record into the hub on the channel its template
// names. One std::jthread polls; it never calls into the host. Also the hub's
// replay source for the channels it fed (seek-and-replay on resume).
// start/stop/health are thread-safe. The hub must outlive the source.
class KafkaSource {
 public:
  // Throws InvalidArgument for a bad template, property or empty topic list.
  KafkaSource(Hub& hub, KafkaSourceConfig config);
  ~KafkaSource();
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Creates the consumer, subscribes and starts polling. Idempotent. Throws
  // KafkaError when librdkafka refuses the consumer.
  void start();
  // Stops polling, closes the consumer (leaving its group) and unregisters
  // the replay source. Idempotent; also run by the destructor.
  void stop();
  [[nodiscard]] bool running() const;
  // Waits until partitions are assigned with known positions.
  bool wait_ready(std::chrono::milliseconds timeout) const;

  [[nodiscard]] const std::string& group_id() const noexcept;
  [[nodiscard]] KafkaSourceHealth health() const;
  [[nodiscard]] std::vector<LogNote> take_log_notes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::kafka
