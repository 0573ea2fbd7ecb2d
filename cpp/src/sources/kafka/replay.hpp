#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sessionstream/core/hub.hpp"
#include "sessionstream/sources/kafka/router.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka::detail {

// Where each event a source published came from: per channel, hub seq to
// (topic, partition, offset), bounded per channel, in channel count and in
// entries over all channels (the oldest entry of any channel goes first, so
// many channels just under their own bound cannot grow it without limit).
// Thread-safe; leaf lock.
class ReplayIndex {
 public:
  struct Position {
    std::uint64_t seq = 0;
    std::uint32_t partition_ref = 0;  // index into the interned (topic, partition) table
    std::int64_t offset = 0;
  };
  struct TopicPartition {
    std::string topic;
    std::int32_t partition = 0;
    friend bool operator<(const TopicPartition& a, const TopicPartition& b) {
      return a.partition != b.partition ? a.partition < b.partition : a.topic < b.topic;
    }
  };
  // What a replay needs: the positions in range, or why it cannot be done.
  struct Lookup {
    bool covered = false;  // false: the index no longer reaches back far enough
    std::vector<std::pair<TopicPartition, Position>> positions;
  };

  static constexpr std::size_t kDefaultMaxTotal = 1'000'000;

  ReplayIndex(std::size_t max_events_per_channel, std::size_t max_channels,
              std::size_t max_total = kDefaultMaxTotal);

  void record(std::string_view channel, std::uint64_t seq, std::string_view topic,
              std::int32_t partition, std::int64_t offset);
  [[nodiscard]] Lookup lookup(std::string_view channel, std::uint64_t after_seq,
                              std::uint64_t through_seq) const;
  [[nodiscard]] std::size_t channels() const;
  [[nodiscard]] std::size_t entries() const;
  // Entries dropped to keep within the total bound.
  [[nodiscard]] std::uint64_t evicted() const;

 private:
  struct Channel {
    std::deque<Position> positions;
    std::uint64_t trimmed_through = 0;  // highest seq dropped from positions
    std::list<std::string>::iterator lru;
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };

  void pop_front_locked(Channel& ch);

  const std::size_t max_events_;
  const std::size_t max_channels_;
  const std::size_t max_total_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Channel, NameHash, std::equal_to<>> channels_;
  std::list<std::string> lru_;  // least recently recorded first
  std::map<TopicPartition, std::uint32_t> partition_refs_;
  std::vector<TopicPartition> partitions_;
  std::size_t entries_ = 0;
  // Every non-empty channel keyed by the seq of its oldest entry: the front
  // is the oldest entry of the whole index. Hub seqs only grow, so a record
  // is never older than a channel's front.
  std::set<std::pair<std::uint64_t, Channel*>> oldest_;
  std::uint64_t evicted_ = 0;
};

struct ReplayCounters {
  std::atomic<std::uint64_t> replays{0};
  std::atomic<std::uint64_t> replayed_events{0};
  std::atomic<std::uint64_t> gaps{0};
};

// The hub's replay source for one KafkaSource: finds the positions of evicted
// events in the index and reads them back from Kafka with an assign-only
// consumer (no group membership, nothing committed). One replay at a time;
// each bounded by the timeout. Thread-safe.
class KafkaReplayer : public ReplaySource {
 public:
  KafkaReplayer(Properties properties, std::shared_ptr<const Router> router,
                std::shared_ptr<ReplayIndex> index, std::uint64_t epoch,
                std::chrono::milliseconds timeout, std::shared_ptr<NoteLog> notes,
                std::shared_ptr<BrokerState> broker, std::shared_ptr<ReplayCounters> counters);
  ~KafkaReplayer() override;

  std::optional<std::vector<EventPtr>> replay(std::string_view channel, std::uint64_t after_seq,
                                              std::uint64_t through_seq) override;
  // Closes the consumer; later replays return nullopt.
  void shutdown();

 private:
  std::optional<std::vector<EventPtr>> fetch(std::string_view channel,
                                             const ReplayIndex::Lookup& lookup);

  const Properties properties_;
  const std::shared_ptr<const Router> router_;
  const std::shared_ptr<ReplayIndex> index_;
  const std::uint64_t epoch_;
  const std::chrono::milliseconds timeout_;
  const std::shared_ptr<NoteLog> notes_;
  const std::shared_ptr<BrokerState> broker_;
  const std::shared_ptr<ReplayCounters> counters_;

  std::mutex mutex_;  // one replay at a time; guards the consumer
  bool shut_down_ = false;
  BrokerState consumer_state_;
  std::unique_ptr<ClientEvents> events_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

}  // namespace sessionstream::kafka::detail
