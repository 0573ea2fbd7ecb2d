#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/log_note.hpp"

namespace sessionstream::kafka {

// librdkafka properties in the order they are applied; a later entry for the
// same key wins. Any librdkafka property may appear here.
using Properties = std::vector<std::pair<std::string, std::string>>;

// A librdkafka call failed; the message names the call, the error and what to check.
class KafkaError : public Error {
 public:
  explicit KafkaError(const std::string& what, std::string code = {})
      : Error(what), code_(std::move(code)) {}
  // librdkafka's error name (e.g. "_TRANSPORT"), empty when not from librdkafka.
  [[nodiscard]] const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// The session-mode pool is at its consumer limit.
class KafkaPoolFull : public KafkaError {
 public:
  KafkaPoolFull(const std::string& what, std::size_t limit)
      : KafkaError(what, "pool_full"), limit_(limit) {}
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

using LogNote = sessionstream::LogNote;

// rd_kafka_version() from which retry.backoff.ms also applies to consumers.
inline constexpr int kRetryBackoffForConsumers = 0x020500ff;

// Seed-000 consumer settings (max.poll.interval.ms 300000, connections.max.idle.ms
// 540000, a 30 s request timeout, retry.backoff.ms 100), low-latency fetching,
// quick reconnects, no offset commits (positions are tracked in the process),
// new groups starting at the end of their partitions.
[[nodiscard]] Properties consumer_defaults();
// Delivery reports on, idempotence off, a short linger for low latency.
[[nodiscard]] Properties producer_defaults();

// base, then overrides; the result has each key once, at its first position.
[[nodiscard]] Properties merged(const Properties& base, const Properties& overrides);
// Without the consumer-only properties (group.id, session.timeout.ms, fetch.*, ...),
// which a producer handle would only warn about.
[[nodiscard]] Properties without_consumer_only(const Properties& properties);
[[nodiscard]] std::optional<std::string> find(const Properties& properties, std::string_view key);
// A copy with secrets (passwords, keys, connection strings) masked, for health and logs.
[[nodiscard]] Properties redacted(const Properties& properties);

// The parts of an Azure Event Hubs connection string
// ("Endpoint=sb://NS.servicebus.windows.net/;SharedAccessKeyName=...;
// SharedAccessKey=...[;EntityPath=HUB]").
struct EventHubsConnection {
  std::string host;               // NS.servicebus.windows.net
  std::string key_name;           // SharedAccessKeyName
  std::string entity_path;        // the event hub (Kafka topic), may be empty
  std::string bootstrap;          // host:9093
  std::string connection_string;  // as given, trimmed
};

// Throws InvalidArgument naming the missing or malformed part.
[[nodiscard]] EventHubsConnection parse_event_hubs_connection_string(std::string_view text);

// The Kafka-endpoint settings Event Hubs needs: bootstrap on port 9093,
// SASL_SSL with PLAIN, user "$ConnectionString" and the connection string as
// password, TCP keep-alive, and idle/metadata intervals below the service's
// 240 s idle cut-off. Merge user overrides after these.
[[nodiscard]] Properties event_hubs_properties(std::string_view connection_string);

}  // namespace sessionstream::kafka
