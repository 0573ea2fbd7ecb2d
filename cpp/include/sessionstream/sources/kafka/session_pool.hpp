#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sessionstream/common/thread_faults.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/kafka/config.hpp"
#include "sessionstream/sources/kafka/router.hpp"
#include "sessionstream/sources/kafka/source.hpp"

namespace sessionstream::kafka {

struct KafkaSessionPoolConfig {
  // librdkafka properties applied over consumer_defaults(); must name bootstrap.servers.
  Properties properties;
  // Group ids are "<group_prefix>-<domain>-<session>-<unix seconds>-<8 hex>".
  std::string group_prefix = "sessionstream";
  // Allowed domains and their topics. Empty: any domain of 1-100 characters
  // [A-Za-z0-9._-], its topic named by topic_template.
  std::vector<std::pair<std::string, std::string>> domains;
  std::string topic_template = "{domain}";  // placeholders {domain}
  // Placeholders {session} and {domain} besides the record's; the default is
  // the session's private channel, which no other session may open.
  std::string channel = "session:{session}";
  std::string event_type = "{domain}";
  PayloadFormat payload = PayloadFormat::auto_detect;
  StartPosition start = StartPosition::latest;
  std::size_t max_consumers = 100;
  // A consumer whose channel had no subscriber for idle_timeout is closed by
  // the sweep, which runs every sweep_interval.
  std::chrono::milliseconds idle_timeout{3'600'000};
  std::chrono::milliseconds sweep_interval{300'000};
  // After a consumer left its group, delete the (empty) group on the broker.
  bool delete_groups = true;
};

struct SessionConsumerStatus {
  std::string session_id;
  std::string domain;
  std::string group_id;
  std::string topic;
  std::string channel;
  double created = 0;      // unix seconds
  double last_active = 0;  // unix seconds
  bool assigned = false;   // partitions assigned with known positions
  std::uint64_t received = 0;
  std::uint64_t published = 0;
};

struct KafkaSessionPoolHealth {
  std::string status;  // "healthy", "degraded", "stopped"
  std::string reason;
  bool running = false;
  std::size_t active_sessions = 0;
  std::size_t total_consumers = 0;
  std::size_t max_consumers = 0;
  std::size_t closing = 0;  // closed by the API or the sweep, still leaving their group
  std::uint64_t opened = 0;
  std::uint64_t closed = 0;
  std::uint64_t idle_closed = 0;
  std::uint64_t groups_deleted = 0;
  std::uint64_t group_delete_errors = 0;
  std::uint64_t rejected = 0;  // opens refused at max_consumers
  std::uint64_t received = 0;
  std::uint64_t published = 0;
  SkipCounts skipped{};
  std::uint64_t errors = 0;
  std::string last_error;
  std::vector<SessionConsumerStatus> consumers;
  std::uint64_t log_notes_dropped = 0;
  std::uint64_t log_notes_suppressed = 0;  // repeats of an already noted kind
  ThreadFaultReport thread_faults;         // exceptions contained at native thread boundaries
};

// Session mode (seed-000 compatible): one consumer group per browser session
// and domain, bounded by max_consumers, closed explicitly or by the idle sweep
// (leaving the group, then deleting it). One poll thread serves every consumer,
// woken through one eventfd by librdkafka; a second thread closes consumers so
// a slow LeaveGroup never stalls delivery. Neither calls into the host.
// Thread-safe. The hub must outlive the pool.
class KafkaSessionPool {
 public:
  KafkaSessionPool(Hub& hub, KafkaSessionPoolConfig config);
  ~KafkaSessionPool();
  KafkaSessionPool(const KafkaSessionPool&) = delete;
  KafkaSessionPool& operator=(const KafkaSessionPool&) = delete;

  void start();
  // Closes every consumer (leaving and deleting groups) and stops both threads.
  void stop();
  [[nodiscard]] bool running() const;

  // Returns the consumer of (session, domain), creating it when absent; an
  // existing one is marked active. Throws InvalidArgument (session id, domain
  // not allowed), KafkaPoolFull, KafkaError, Closed (not running).
  SessionConsumerStatus open(const std::string& session_id, const std::string& domain);
  // Explicit disconnect; returns whether a consumer was closed.
  bool close(const std::string& session_id, const std::string& domain);
  // Every domain of a session; returns how many consumers were closed.
  std::size_t close_session(const std::string& session_id);
  // Closes consumers idle for idle_timeout now; returns how many.
  std::size_t sweep();

  bool wait_assigned(const std::string& session_id, const std::string& domain,
                     std::chrono::milliseconds timeout) const;
  // Waits until every closed consumer has left (and deleted) its group.
  bool wait_closed(std::chrono::milliseconds timeout) const;

  [[nodiscard]] KafkaSessionPoolHealth health() const;
  [[nodiscard]] std::vector<LogNote> take_log_notes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::kafka
