#include <algorithm>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/kafka/source.hpp"
#include "sources/kafka/rd.hpp"
#include "sources/kafka/replay.hpp"

namespace sessionstream::kafka {

StartPosition parse_start_position(std::string_view text) {
  if (text == "latest") return StartPosition::latest;
  if (text == "earliest") return StartPosition::earliest;
  throw InvalidArgument("start '" + utf8_excerpt(text, 40) +
                        "' is invalid: use 'latest' or 'earliest'");
}

using detail::BrokerState;
using detail::ClientEvents;
using detail::NoteLog;
using detail::ReplayIndex;
using TopicPartitionKey = ReplayIndex::TopicPartition;

struct KafkaSource::Impl : public RdKafka::RebalanceCb {
  Impl(Hub& hub_ref, KafkaSourceConfig cfg);

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;
  void rebalance(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                 std::vector<RdKafka::TopicPartition*>& partitions);
  void run(const std::stop_token& stop);
  void poll_once(int timeout, std::chrono::steady_clock::time_point& last_snapshot);
  void handle(RdKafka::Message& message);
  void refresh_snapshot();
  void probe_broker();
  void skip(SkipKind kind, const RecordView& record, const std::string& detail);

  Hub& hub;
  const KafkaSourceConfig config;
  std::string group_id;
  Properties properties;
  std::shared_ptr<const Router> router;
  std::shared_ptr<NoteLog> notes = std::make_shared<NoteLog>();
  std::shared_ptr<BrokerState> broker = std::make_shared<BrokerState>();
  std::shared_ptr<ReplayIndex> index;
  std::shared_ptr<detail::ReplayCounters> replay_counters =
      std::make_shared<detail::ReplayCounters>();
  std::shared_ptr<detail::KafkaReplayer> replayer;
  ThreadFaults faults;  // the poll thread and librdkafka's callbacks
  ClientEvents events;

  mutable std::mutex lifecycle_mutex;  // start/stop
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  std::jthread thread;
  std::atomic<bool> running{false};

  // Poll-thread state: touched by run() and by rebalance_cb, which runs inside
  // consume() on the same thread (or inside close() after the thread ended).
  std::map<TopicPartitionKey, std::int64_t> next_offsets;
  std::set<TopicPartitionKey> assigned;
  std::chrono::steady_clock::time_point last_probe{};
  std::chrono::system_clock::time_point started_at{};  // where "latest" begins
  bool hub_closed = false;

  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::array<std::atomic<std::uint64_t>, kSkipKinds> skipped{};

  mutable std::mutex snapshot_mutex;
  mutable std::condition_variable ready_cv;
  std::vector<PartitionStatus> snapshot;
  bool ready = false;
};

KafkaSource::Impl::Impl(Hub& hub_ref, KafkaSourceConfig cfg)
    : hub(hub_ref),
      config(std::move(cfg)),
      events(*notes, *broker, "kafka source consumer", &faults) {
  if (config.topics.empty()) {
    throw InvalidArgument("KafkaSource needs at least one topic, got none");
  }
  for (const auto& topic : config.topics) {
    if (topic.empty() || topic.size() > 249) {
      throw InvalidArgument("topic '" + utf8_excerpt(topic, 80) +
                            "' is invalid: use 1-249 characters (or ^regex for a pattern)");
    }
  }
  if (!find(config.properties, "bootstrap.servers")) {
    throw InvalidArgument(
        "KafkaSource needs the librdkafka property bootstrap.servers (e.g. 127.0.0.1:9092)");
  }
  if (config.replay_timeout.count() <= 0 || config.poll_timeout.count() <= 0) {
    throw InvalidArgument("replay_timeout and poll_timeout must be positive");
  }
  router = std::make_shared<const Router>(config.channel, config.event_type, config.payload);
  const std::string node =
      config.node_id.empty() ? detail::default_node_id() : detail::group_safe(config.node_id);
  group_id = detail::group_safe(config.group_prefix) + "-node-" + node;
  if (find(config.properties, "group.id")) {
    notes->once("info", "config.group_id",
                "group.id is ignored in node mode; this node's group is " + group_id);
  }
  properties = merged(consumer_defaults(), config.properties);
  properties = merged(
      properties,
      {{"group.id", group_id},
       {"auto.offset.reset", config.start == StartPosition::earliest ? "earliest" : "latest"}});
  index = std::make_shared<ReplayIndex>(config.replay_max_events, config.replay_max_channels,
                                        config.replay_max_total_events);
  replayer = std::make_shared<detail::KafkaReplayer>(
      merged(properties, {{"group.id", group_id + "-replay"},
                          {"auto.offset.reset", "error"},
                          {"enable.auto.commit", "false"}}),
      router, index, hub.epoch(), config.replay_timeout, notes, broker, replay_counters);
  // Fail on bad properties now, in the caller's thread, rather than at start().
  (void)detail::make_conf(properties);
}

void KafkaSource::Impl::rebalance_cb(RdKafka::KafkaConsumer* rk, RdKafka::ErrorCode err,
                                     std::vector<RdKafka::TopicPartition*>& partitions) {
  // Called from librdkafka's C code (inside consume() or close()): nothing may escape.
  if (detail::contain_noted(faults, *notes, "kafka source rebalance callback",
                            [&] { rebalance(rk, err, partitions); })) {
    return;
  }
  // Half done, librdkafka's assignment and ours may disagree: give these
  // partitions up on both sides (they come back at the next rebalance) rather
  // than consume some without positions or report some never assigned.
  try {
    if (rk->rebalance_protocol() == "COOPERATIVE") {
      std::unique_ptr<RdKafka::Error> error{rk->incremental_unassign(partitions)};
      for (RdKafka::TopicPartition* tp : partitions) {
        assigned.erase({tp->topic(), tp->partition()});
      }
    } else {
      rk->unassign();
      assigned.clear();
    }
    refresh_snapshot();
  } catch (...) {
    // Out of memory: the fault is counted and health says degraded.
  }
}

void KafkaSource::Impl::rebalance(RdKafka::KafkaConsumer* rk, RdKafka::ErrorCode err,
                                  std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool cooperative = rk->rebalance_protocol() == "COOPERATIVE";
  switch (err) {
    case RdKafka::ERR__ASSIGN_PARTITIONS: {
      for (RdKafka::TopicPartition* tp : partitions) {
        TopicPartitionKey key{tp->topic(), tp->partition()};
        const auto known = next_offsets.find(key);
        if (known != next_offsets.end()) {
          // Continue exactly where this process left off: no loss, no duplicate.
          tp->set_offset(known->second);
        } else if (config.start == StartPosition::earliest) {
          tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
        } else {
          // Resolve "latest" now so the start is a known offset: a record
          // produced after start() is never missed.
          if (const auto from = detail::latest_start(*rk, tp->topic(), tp->partition(), started_at,
                                                     *notes, std::chrono::seconds(5))) {
            tp->set_offset(*from);
            next_offsets[key] = *from;
          } else {
            tp->set_offset(RdKafka::Topic::OFFSET_END);
          }
        }
        assigned.insert(std::move(key));
      }
      if (cooperative) {
        std::unique_ptr<RdKafka::Error> error{rk->incremental_assign(partitions)};
        if (error) notes->always("error", "rebalance.assign", error->str());
      } else {
        const auto code = rk->assign(partitions);
        if (code != RdKafka::ERR_NO_ERROR) {
          notes->always("error", "rebalance.assign", detail::error_text(code));
        }
      }
      break;
    }
    case RdKafka::ERR__REVOKE_PARTITIONS:
      if (cooperative) {
        std::unique_ptr<RdKafka::Error> error{rk->incremental_unassign(partitions)};
        for (RdKafka::TopicPartition* tp : partitions) {
          assigned.erase({tp->topic(), tp->partition()});
        }
      } else {
        rk->unassign();
        assigned.clear();
      }
      break;
    default:
      notes->always("error", "rebalance.error", "rebalance failed: " + detail::error_text(err));
      rk->unassign();
      assigned.clear();
      break;
  }
  refresh_snapshot();
}

void KafkaSource::Impl::skip(SkipKind kind, const RecordView& record, const std::string& detail) {
  const std::uint64_t count =
      skipped[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed) + 1;
  detail::note_skip(*notes, kind, count, record, detail);
}

void KafkaSource::Impl::handle(RdKafka::Message& message) {
  received.fetch_add(1, std::memory_order_relaxed);
  const RecordView record = detail::record_view(message);
  auto [position, inserted] = next_offsets.try_emplace(
      TopicPartitionKey{std::string{record.topic}, record.partition}, record.offset);
  if (record.offset < position->second) {
    // Re-delivered after a reconnect or rebalance: already published once.
    duplicates.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  position->second = record.offset + 1;
  if (hub_closed) return;

  auto routed = router->route(record);
  if (const auto* skipped_record = std::get_if<Skip>(&routed)) {
    skip(skipped_record->kind, record, skipped_record->detail);
    return;
  }
  try {
    // Refused records (bad channel, type, size, or a value that is not UTF-8)
    // are skipped and counted; the poll thread never stops for them.
    auto outcome = publish_routed(hub, std::move(std::get<RoutedRecord>(routed)), record.value);
    if (const auto* refused = std::get_if<Skip>(&outcome)) {
      skip(refused->kind, record, refused->detail);
      return;
    }
    const EventPtr& event = std::get<EventPtr>(outcome);
    index->record(event->channel(), event->id().seq, record.topic, record.partition, record.offset);
    published.fetch_add(1, std::memory_order_relaxed);
  } catch (const Closed&) {
    hub_closed = true;
    notes->once("info", "hub.closed", "the hub is closed; Kafka records are no longer published");
  }
}

void KafkaSource::Impl::refresh_snapshot() {
  std::vector<PartitionStatus> statuses;
  bool all_known = !assigned.empty();
  for (const auto& key : assigned) {
    PartitionStatus status{key.topic, key.partition, -1, -1, -1};
    if (const auto it = next_offsets.find(key); it != next_offsets.end()) {
      status.next_offset = it->second;
    } else if (config.start == StartPosition::latest) {
      all_known = false;
    }
    std::int64_t low = -1;
    std::int64_t high = -1;
    if (consumer &&
        consumer->get_watermark_offsets(key.topic, key.partition, &low, &high) ==
            RdKafka::ERR_NO_ERROR &&
        high >= 0) {
      status.high_watermark = high;
      if (status.next_offset >= 0)
        status.lag = std::max<std::int64_t>(0, high - status.next_offset);
    }
    statuses.push_back(std::move(status));
  }
  {
    std::lock_guard lock(snapshot_mutex);
    snapshot = std::move(statuses);
    ready = all_known;
  }
  if (all_known) ready_cv.notify_all();
}

void KafkaSource::Impl::probe_broker() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_probe < std::chrono::seconds(1)) return;
  last_probe = now;
  RdKafka::Metadata* raw = nullptr;
  const auto code = consumer->metadata(false, nullptr, &raw, 1000);
  std::unique_ptr<RdKafka::Metadata> metadata{raw};
  if (code == RdKafka::ERR_NO_ERROR) {
    broker->set_up();
    notes->rearm("error.");
    notes->always("info", "broker.up", "kafka source: broker reachable again");
  }
}

void KafkaSource::Impl::run(const std::stop_token& stop) {
  auto last_snapshot = std::chrono::steady_clock::now();
  const int timeout = static_cast<int>(config.poll_timeout.count());
  while (!stop.stop_requested()) {
    // A fault abandons the record in hand: the consumer has moved past it.
    if (!detail::contain_noted(faults, *notes, "kafka source poll thread",
                               [&] { poll_once(timeout, last_snapshot); })) {
      detail::pause_after_fault(stop);
    }
  }
}

void KafkaSource::Impl::poll_once(int timeout,
                                  std::chrono::steady_clock::time_point& last_snapshot) {
  std::unique_ptr<RdKafka::Message> message{consumer->consume(timeout)};
  switch (message->err()) {
    case RdKafka::ERR_NO_ERROR:
      if (broker->down()) {
        broker->set_up();
        notes->rearm("error.");
      }
      handle(*message);
      break;
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF:
      break;
    default:
      broker->count_error();
      broker->set_last_error(detail::error_text(message->err()) + ": " + message->errstr());
      notes->once("warning", "consume." + detail::error_name(message->err()),
                  "kafka source: " + message->errstr());
      break;
  }
  if (broker->down()) probe_broker();
  const auto now = std::chrono::steady_clock::now();
  if (now - last_snapshot >= std::chrono::milliseconds(500)) {
    last_snapshot = now;
    refresh_snapshot();
  }
}

KafkaSource::KafkaSource(Hub& hub, KafkaSourceConfig config)
    : impl_(std::make_unique<Impl>(hub, std::move(config))) {}

KafkaSource::~KafkaSource() {
  stop();
}

void KafkaSource::start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.running.load()) return;
  s.started_at = std::chrono::system_clock::now();
  auto conf = detail::make_conf(s.properties);
  detail::set_callback(*conf, "event_cb", &s.events);
  detail::set_callback(*conf, "rebalance_cb", static_cast<RdKafka::RebalanceCb*>(&s));
  std::string errstr;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer{
      RdKafka::KafkaConsumer::create(conf.get(), errstr)};
  if (!consumer) throw KafkaError("cannot create the Kafka consumer: " + errstr);
  const auto code = consumer->subscribe(s.config.topics);
  if (code != RdKafka::ERR_NO_ERROR) {
    consumer->close();
    throw KafkaError("cannot subscribe to the topics: " + detail::error_text(code),
                     detail::error_name(code));
  }
  s.consumer = std::move(consumer);
  s.hub.add_replay_source(s.replayer);
  s.running.store(true);
  s.thread = std::jthread([&s](std::stop_token stop) { s.run(stop); });
}

void KafkaSource::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (!s.running.load()) return;
  s.thread.request_stop();
  if (s.thread.joinable()) s.thread.join();
  s.hub.remove_replay_source(s.replayer.get());
  s.replayer->shutdown();
  // close() leaves the group (revoking through rebalance_cb on this thread,
  // now that the poll thread has ended) before the consumer is destroyed.
  s.consumer->close();
  s.consumer.reset();
  s.running.store(false);
  {
    std::lock_guard snapshot_lock(s.snapshot_mutex);
    s.snapshot.clear();
    s.ready = false;
  }
}

bool KafkaSource::running() const {
  return impl_->running.load();
}

bool KafkaSource::wait_ready(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->snapshot_mutex);
  return impl_->ready_cv.wait_for(lock, timeout, [this] { return impl_->ready; });
}

const std::string& KafkaSource::group_id() const noexcept {
  return impl_->group_id;
}

KafkaSourceHealth KafkaSource::health() const {
  const Impl& s = *impl_;
  KafkaSourceHealth h;
  h.running = s.running.load();
  h.group_id = s.group_id;
  h.topics = s.config.topics;
  h.consumers = h.running ? 1 : 0;
  {
    std::lock_guard lock(s.snapshot_mutex);
    h.assignments = s.snapshot;
    h.ready = s.ready;
  }
  h.received = s.received.load();
  h.published = s.published.load();
  h.duplicates = s.duplicates.load();
  for (std::size_t i = 0; i < kSkipKinds; ++i) h.skipped[i] = s.skipped[i].load();
  h.errors = s.broker->errors();
  h.last_error = s.broker->last_error();
  h.replay.replays = s.replay_counters->replays.load();
  h.replay.replayed_events = s.replay_counters->replayed_events.load();
  h.replay.gaps = s.replay_counters->gaps.load();
  h.replay.index_channels = s.index->channels();
  h.replay.index_entries = s.index->entries();
  h.replay.index_evicted = s.index->evicted();
  h.log_notes_dropped = s.notes->dropped();
  h.log_notes_suppressed = s.notes->suppressed();
  h.thread_faults = s.faults.report();
  if (!h.running) {
    h.status = "stopped";
    h.reason = "the Kafka source is not running";
  } else if (s.broker->fatal() || s.broker->down()) {
    h.status = "degraded";
    h.reason = s.broker->reason();
  } else {
    h.status = "healthy";
  }
  detail::degrade_on_fault(h.thread_faults, h.status, h.reason);
  return h;
}

std::vector<LogNote> KafkaSource::take_log_notes() {
  return impl_->notes->take();
}

}  // namespace sessionstream::kafka
