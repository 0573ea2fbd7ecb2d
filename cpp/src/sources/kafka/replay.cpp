#include "sources/kafka/replay.hpp"

#include <algorithm>
#include <set>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"

namespace sessionstream::kafka::detail {

ReplayIndex::ReplayIndex(std::size_t max_events_per_channel, std::size_t max_channels,
                         std::size_t max_total)
    : max_events_(std::max<std::size_t>(1, max_events_per_channel)),
      max_channels_(std::max<std::size_t>(1, max_channels)),
      max_total_(std::max<std::size_t>(1, max_total)) {}

void ReplayIndex::pop_front_locked(Channel& ch) {
  oldest_.erase({ch.positions.front().seq, &ch});
  ch.trimmed_through = ch.positions.front().seq;
  ch.positions.pop_front();
  --entries_;
  if (!ch.positions.empty()) oldest_.emplace(ch.positions.front().seq, &ch);
}

void ReplayIndex::record(std::string_view channel, std::uint64_t seq, std::string_view topic,
                         std::int32_t partition, std::int64_t offset) {
  std::lock_guard lock(mutex_);
  TopicPartition key{std::string{topic}, partition};
  auto ref = partition_refs_.find(key);
  if (ref == partition_refs_.end()) {
    ref = partition_refs_.emplace(key, static_cast<std::uint32_t>(partitions_.size())).first;
    partitions_.push_back(std::move(key));
  }
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    if (channels_.size() >= max_channels_) {
      // The least recently recorded channel goes; a resume on it reports a gap.
      const auto victim = channels_.find(lru_.front());
      entries_ -= victim->second.positions.size();
      if (!victim->second.positions.empty()) {
        oldest_.erase({victim->second.positions.front().seq, &victim->second});
      }
      channels_.erase(victim);
      lru_.pop_front();
    }
    it = channels_.emplace(std::string{channel}, Channel{}).first;
    it->second.lru = lru_.insert(lru_.end(), it->first);
  } else {
    lru_.splice(lru_.end(), lru_, it->second.lru);
  }
  Channel& ch = it->second;
  if (ch.positions.empty()) oldest_.emplace(seq, &ch);
  ch.positions.push_back({seq, ref->second, offset});
  ++entries_;
  while (ch.positions.size() > max_events_) pop_front_locked(ch);
  while (entries_ > max_total_) {
    // The channel keeps its (now raised) trimmed_through even when emptied,
    // so a resume from before it is answered with a gap, never a silent skip.
    pop_front_locked(*oldest_.begin()->second);
    ++evicted_;
  }
}

ReplayIndex::Lookup ReplayIndex::lookup(std::string_view channel, std::uint64_t after_seq,
                                        std::uint64_t through_seq) const {
  std::lock_guard lock(mutex_);
  Lookup out;
  const auto it = channels_.find(channel);
  if (it == channels_.end()) return out;
  const Channel& ch = it->second;
  if (ch.trimmed_through > after_seq) return out;
  out.covered = true;
  const auto first =
      std::upper_bound(ch.positions.begin(), ch.positions.end(), after_seq,
                       [](std::uint64_t seq, const Position& p) { return seq < p.seq; });
  for (auto p = first; p != ch.positions.end() && p->seq <= through_seq; ++p) {
    out.positions.emplace_back(partitions_[p->partition_ref], *p);
  }
  return out;
}

std::size_t ReplayIndex::channels() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

std::size_t ReplayIndex::entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

std::uint64_t ReplayIndex::evicted() const {
  std::lock_guard lock(mutex_);
  return evicted_;
}

KafkaReplayer::KafkaReplayer(Properties properties, std::shared_ptr<const Router> router,
                             std::shared_ptr<ReplayIndex> index, std::uint64_t epoch,
                             std::chrono::milliseconds timeout, std::shared_ptr<NoteLog> notes,
                             std::shared_ptr<BrokerState> broker,
                             std::shared_ptr<ReplayCounters> counters)
    : properties_(std::move(properties)),
      router_(std::move(router)),
      index_(std::move(index)),
      epoch_(epoch),
      timeout_(timeout),
      notes_(std::move(notes)),
      broker_(std::move(broker)),
      counters_(std::move(counters)) {}

KafkaReplayer::~KafkaReplayer() {
  shutdown();
}

void KafkaReplayer::shutdown() {
  std::lock_guard lock(mutex_);
  shut_down_ = true;
  if (consumer_) {
    consumer_->close();
    consumer_.reset();
  }
}

std::optional<std::vector<EventPtr>> KafkaReplayer::replay(std::string_view channel,
                                                           std::uint64_t after_seq,
                                                           std::uint64_t through_seq) {
  const ReplayIndex::Lookup lookup = index_->lookup(channel, after_seq, through_seq);
  if (!lookup.covered) {
    // Not a channel of this source, or further back than the index reaches.
    return std::nullopt;
  }
  counters_->replays.fetch_add(1, std::memory_order_relaxed);
  if (lookup.positions.empty()) return std::vector<EventPtr>{};
  if (broker_->down()) {
    counters_->gaps.fetch_add(1, std::memory_order_relaxed);
    notes_->once("warning", "replay.broker_down",
                 "resume on '" + std::string{channel} +
                     "' needs a Kafka replay but the broker is unreachable; the client gets a gap");
    return std::nullopt;
  }
  auto events = fetch(channel, lookup);
  if (events) {
    counters_->replayed_events.fetch_add(events->size(), std::memory_order_relaxed);
  } else {
    counters_->gaps.fetch_add(1, std::memory_order_relaxed);
  }
  return events;
}

std::optional<std::vector<EventPtr>> KafkaReplayer::fetch(std::string_view channel,
                                                          const ReplayIndex::Lookup& lookup) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout_;
  std::lock_guard lock(mutex_);
  if (shut_down_) return std::nullopt;
  if (!consumer_) {
    auto conf = make_conf(properties_);
    events_ = std::make_unique<ClientEvents>(*notes_, consumer_state_, "kafka replay consumer");
    set_callback(*conf, "event_cb", events_.get());
    std::string errstr;
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), errstr));
    if (!consumer_) {
      notes_->once("error", "replay.create", "cannot create the replay consumer: " + errstr);
      return std::nullopt;
    }
  }

  // Wanted offsets per partition, each with the seq it was published under.
  std::map<ReplayIndex::TopicPartition, std::map<std::int64_t, std::uint64_t>> wanted;
  for (const auto& [tp, position] : lookup.positions) wanted[tp][position.offset] = position.seq;

  std::vector<RdKafka::TopicPartition*> assignment;
  for (const auto& [tp, offsets] : wanted) {
    assignment.push_back(
        RdKafka::TopicPartition::create(tp.topic, tp.partition, offsets.begin()->first));
  }
  const RdKafka::ErrorCode assigned = consumer_->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (assigned != RdKafka::ERR_NO_ERROR) {
    notes_->once("error", "replay.assign", "replay assign failed: " + error_text(assigned));
    return std::nullopt;
  }

  std::vector<EventPtr> events;
  events.reserve(lookup.positions.size());
  std::size_t remaining = lookup.positions.size();
  std::string reason;
  while (remaining > 0 && reason.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      reason = "timed out after " + std::to_string(timeout_.count()) + " ms";
      break;
    }
    std::unique_ptr<RdKafka::Message> message{
        consumer_->consume(static_cast<int>(std::min<long long>(left, 100)))};
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        RecordView record = record_view(*message);
        const auto tp = wanted.find({std::string{record.topic}, record.partition});
        if (tp == wanted.end()) break;
        auto& offsets = tp->second;
        // Offsets before the wanted one were compacted or skipped; offsets
        // past the last wanted one mean this partition is done.
        while (!offsets.empty() && offsets.begin()->first < record.offset) {
          reason = "offset " + std::to_string(offsets.begin()->first) + " of " +
                   std::string{record.topic} + "/" + std::to_string(record.partition) +
                   " is no longer in Kafka";
          offsets.erase(offsets.begin());
        }
        const auto hit = offsets.find(record.offset);
        if (hit == offsets.end()) break;
        const std::uint64_t seq = hit->second;
        offsets.erase(hit);
        --remaining;
        const auto routed = router_->route(record);
        const auto* ok = std::get_if<RoutedRecord>(&routed);
        if (ok == nullptr || ok->channel != channel) {
          reason = "record at offset " + std::to_string(record.offset) + " routes elsewhere now";
          break;
        }
        if (!is_valid_utf8(record.value)) {
          // Never published as such (the hub refuses it); the topic changed under us.
          reason = "record at offset " + std::to_string(record.offset) + " is not valid UTF-8";
          break;
        }
        events.push_back(std::make_shared<const Event>(ok->channel, EventId{epoch_, seq}, ok->type,
                                                       std::string{record.value}, ok->json));
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        break;
      default:
        reason = error_text(message->err()) + ": " + message->errstr();
        break;
    }
  }
  consumer_->unassign();
  if (!reason.empty()) {
    notes_->once("warning", "replay.failed",
                 "Kafka replay for '" + std::string{channel} + "' failed (" + reason +
                     "); the client gets a gap");
    return std::nullopt;
  }
  std::sort(events.begin(), events.end(),
            [](const EventPtr& a, const EventPtr& b) { return a->id().seq < b->id().seq; });
  return events;
}

}  // namespace sessionstream::kafka::detail
