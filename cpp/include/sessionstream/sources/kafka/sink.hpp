#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sessionstream/common/thread_faults.hpp"
#include "sessionstream/sources/kafka/config.hpp"

namespace sessionstream::kafka {

struct KafkaSinkConfig {
  // librdkafka properties applied over producer_defaults(); must name bootstrap.servers.
  Properties properties;
  // How long produce() waits for room when librdkafka's queue is full.
  std::chrono::milliseconds queue_full_timeout{1'000};
};

struct KafkaSinkHealth {
  std::string status;  // "healthy", "degraded", "stopped"
  std::string reason;
  bool running = false;
  std::uint64_t produced = 0;   // accepted by produce()
  std::uint64_t delivered = 0;  // acknowledged by the broker
  std::uint64_t failed = 0;     // delivery reports with an error
  std::uint64_t in_flight = 0;  // queued in librdkafka, not yet reported
  std::uint64_t errors = 0;
  std::string last_error;
  ThreadFaultReport thread_faults;  // exceptions contained at native thread boundaries
};

// A native producer with delivery reports, so records published from Python
// reach every node's KafkaSource. One std::jthread serves delivery reports and
// client events. produce() is thread-safe and never blocks on the broker.
class KafkaSink {
 public:
  explicit KafkaSink(KafkaSinkConfig config);
  ~KafkaSink();
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  void start();
  // Flushes for up to timeout, then stops; undelivered records are counted failed.
  void stop(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds{5'000});
  [[nodiscard]] bool running() const;

  // Queues one record. partition -1 lets the partitioner choose (by key).
  // Throws KafkaError (queue full after queue_full_timeout, unknown topic, not running).
  void produce(const std::string& topic, std::string_view value,
               std::optional<std::string_view> key = std::nullopt,
               const std::vector<std::pair<std::string, std::string>>& headers = {},
               std::int32_t partition = -1);
  // Waits until every queued record was reported; returns how many are still in flight.
  std::uint64_t flush(std::chrono::milliseconds timeout);

  [[nodiscard]] KafkaSinkHealth health() const;
  [[nodiscard]] std::vector<LogNote> take_log_notes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::kafka
