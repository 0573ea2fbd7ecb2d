#pragma once

// Private helpers shared by the librdkafka-based classes: configuration,
// log notes, client event handling and record views.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/log_notes.hpp"
#include "common/thread_fault_notes.hpp"
#include "sessionstream/common/thread_faults.hpp"
#include "sessionstream/sources/kafka/config.hpp"
#include "sessionstream/sources/kafka/router.hpp"

namespace sessionstream::kafka::detail {

// Every property set and checked against CONF_OK; a rejected one throws
// InvalidArgument with librdkafka's errstr.
[[nodiscard]] std::unique_ptr<RdKafka::Conf> make_conf(const Properties& properties);
// Sets a callback on a configuration; throws KafkaError when librdkafka refuses it.
void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::EventCb* cb);
void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::RebalanceCb* cb);
void set_callback(RdKafka::Conf& conf, const char* name, RdKafka::DeliveryReportCb* cb);

[[nodiscard]] std::string error_name(RdKafka::ErrorCode code);
[[nodiscard]] std::string error_text(RdKafka::ErrorCode code);

using sessionstream::detail::contain_noted;
using sessionstream::detail::degrade_on_fault;
using sessionstream::detail::kFaultPause;
using sessionstream::detail::NoteLog;
using sessionstream::detail::pause_after_fault;

// Broker reachability as seen by one client, updated by its event callback on
// the thread that polls it, read by any thread.
class BrokerState {
 public:
  void set_down(std::string reason);
  void set_up();
  void set_fatal(std::string reason);
  [[nodiscard]] bool down() const noexcept { return down_.load(std::memory_order_acquire); }
  [[nodiscard]] bool fatal() const noexcept { return fatal_.load(std::memory_order_acquire); }
  [[nodiscard]] std::string reason() const;
  [[nodiscard]] std::uint64_t errors() const noexcept { return errors_.load(); }
  void count_error() noexcept { errors_.fetch_add(1, std::memory_order_relaxed); }
  void set_last_error(std::string text);
  [[nodiscard]] std::string last_error() const;

 private:
  std::atomic<bool> down_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<std::uint64_t> errors_{0};
  mutable std::mutex mutex_;
  std::string reason_;
  std::string last_error_;
};

// Client events (errors, logs) into notes and broker state. Runs on whichever
// thread serves the client's queue, called from librdkafka's C code: a fault
// in it is contained in faults (the component's, else one of its own).
class ClientEvents : public RdKafka::EventCb {
 public:
  ClientEvents(NoteLog& notes, BrokerState& state, std::string who, ThreadFaults* faults = nullptr)
      : notes_(notes),
        state_(state),
        who_(std::move(who)),
        where_(who_ + " event callback"),
        faults_(faults != nullptr ? *faults : own_faults_) {}
  ClientEvents(const ClientEvents&) = delete;
  ClientEvents& operator=(const ClientEvents&) = delete;
  void event_cb(RdKafka::Event& event) override;

 private:
  void handle(RdKafka::Event& event);

  NoteLog& notes_;
  BrokerState& state_;
  const std::string who_;
  const std::string where_;
  ThreadFaults own_faults_;
  ThreadFaults& faults_;
};

// The end offset of a partition, asked of its leader. Retried within budget: a
// partition created moments ago may not have a leader yet. nullopt when it
// stays unknown (noted once).
[[nodiscard]] std::optional<std::int64_t> end_offset(RdKafka::KafkaConsumer& consumer,
                                                     const std::string& topic,
                                                     std::int32_t partition, NoteLog& notes,
                                                     std::chrono::milliseconds budget);

// Where "latest" starts on a partition assigned only now: the first record
// stamped at or after since (the source's start), else the end. A source that
// started while the broker was away, or whose group took long to join, so
// skips nothing produced after it started. nullopt as end_offset.
[[nodiscard]] std::optional<std::int64_t> latest_start(
    RdKafka::KafkaConsumer& consumer, const std::string& topic, std::int32_t partition,
    std::chrono::system_clock::time_point since, NoteLog& notes, std::chrono::milliseconds budget);

// Invalid UTF-8 comes from producers writing binary data, which tend to keep
// doing so: such records are noted again every this many, never one by one.
inline constexpr std::uint64_t kInvalidUtf8NoteEvery = 1000;

// Notes a skipped record: once per kind, except invalid_utf8, which is noted
// on its first record and then every kInvalidUtf8NoteEvery with the count so
// far. count is the kind's counter including this record.
void note_skip(NoteLog& notes, SkipKind kind, std::uint64_t count, const RecordView& record,
               const std::string& detail);

// Owned view of a message's fields for routing; valid while the message lives.
[[nodiscard]] RecordView record_view(RdKafka::Message& message);

// Text form of a group id part: anything outside [A-Za-z0-9._-] becomes '_'.
[[nodiscard]] std::string group_safe(std::string_view text);
// Eight lowercase hex characters from the secure random source.
[[nodiscard]] std::string random_hex8();
// "h" and the first 16 hex digits of SHA-256(session_id): names the session in a
// consumer group id (which librdkafka and brokers log) without the bearer
// secret; /health's digest of the same session is "h:" and the same digits.
[[nodiscard]] std::string session_digest(std::string_view session_id);
// hostname-pid
[[nodiscard]] std::string default_node_id();

// Seconds since the Unix epoch, as a double.
[[nodiscard]] double unix_seconds(std::chrono::system_clock::time_point t);

}  // namespace sessionstream::kafka::detail
