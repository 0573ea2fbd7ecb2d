#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "sessionstream/core/hub.hpp"
#include "sources/kafka/replay.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::drain_sse;
using test::event_seqs;

constexpr std::uint64_t kEpoch = 0xCAFE;

HubConfig small_ring(std::size_t events) {
  HubConfig c;
  c.epoch = kEpoch;
  c.history.max_events = events;
  return c;
}

std::string id(std::uint64_t seq) {
  return EventId{kEpoch, seq}.to_string();
}

// Replays from a copy of everything published, like a Kafka topic would.
class FakeSource : public ReplaySource {
 public:
  std::optional<std::vector<EventPtr>> replay(std::string_view channel, std::uint64_t after,
                                              std::uint64_t through) override {
    ++calls;
    last_after = after;
    last_through = through;
    if (during) during();
    if (!available) return std::nullopt;
    std::vector<EventPtr> out;
    for (const auto& e : log) {
      if (e->channel() == channel && e->id().seq > after && e->id().seq <= through) {
        // A fresh copy with the original id, as a re-read record would be.
        out.push_back(std::make_shared<const Event>(e->channel(), e->id(), e->type(), e->data(),
                                                    e->data_is_json()));
      }
    }
    return out;
  }

  std::vector<EventPtr> log;
  bool available = true;
  int calls = 0;
  std::uint64_t last_after = 0;
  std::uint64_t last_through = 0;
  std::function<void()> during;
};

MailboxPtr mailbox(Hub& hub) {
  return hub.make_mailbox(MailboxOptions{}, std::make_shared<Notifier>());
}

TEST(HubReplaySource, FillsAGapWithOriginalIdsAndNoDuplicates) {
  Hub hub(small_ring(3));
  auto source = std::make_shared<FakeSource>();
  hub.add_replay_source(source);
  for (int i = 1; i <= 10; ++i)
    source->log.push_back(hub.publish("c", std::to_string(i), "message", false));
  hub.publish("other", "x", "message", false);

  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, id(2)), ResumeOutcome::exact);
  const auto messages = drain_sse(*sub);
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  for (const auto& m : messages) EXPECT_NE(m.event, "gap");
  EXPECT_EQ(source->calls, 1);
  EXPECT_EQ(source->last_after, 2U);
  EXPECT_EQ(source->last_through, 7U);  // the ring still holds 8..10
}

TEST(HubReplaySource, NotAskedWhenTheRingCovers) {
  Hub hub(small_ring(100));
  auto source = std::make_shared<FakeSource>();
  hub.add_replay_source(source);
  for (int i = 1; i <= 5; ++i) hub.publish("c", "x", "message", false);
  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, id(1)), ResumeOutcome::exact);
  EXPECT_EQ(source->calls, 0);
  EXPECT_EQ(event_seqs(drain_sse(*sub)), (std::vector<std::uint64_t>{2, 3, 4, 5}));
}

TEST(HubReplaySource, UnavailableSourceMeansAnExplicitGap) {
  Hub hub(small_ring(2));
  auto source = std::make_shared<FakeSource>();
  source->available = false;
  hub.add_replay_source(source);
  for (int i = 1; i <= 6; ++i) hub.publish("c", "x", "message", false);
  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, id(1)), ResumeOutcome::gap);
  const auto messages = drain_sse(*sub);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front().event, "gap");
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{5, 6}));
}

TEST(HubReplaySource, EvictionDuringTheReplayIsReportedAsAGap) {
  Hub hub(small_ring(2));
  auto source = std::make_shared<FakeSource>();
  hub.add_replay_source(source);
  for (int i = 1; i <= 6; ++i) source->log.push_back(hub.publish("c", "x", "message", false));
  // Publishing while the source runs evicts past what it was asked to cover.
  source->during = [&] {
    source->during = nullptr;
    for (int i = 0; i < 3; ++i) source->log.push_back(hub.publish("c", "y", "message", false));
  };
  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, id(1)), ResumeOutcome::gap);
}

TEST(HubReplaySource, StaleOrForeignIdsAreNotReplayed) {
  Hub hub(small_ring(2));
  auto source = std::make_shared<FakeSource>();
  hub.add_replay_source(source);
  for (int i = 1; i <= 6; ++i) hub.publish("c", "x", "message", false);
  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, EventId{kEpoch + 1, 1}.to_string()), ResumeOutcome::reset);
  EXPECT_EQ(source->calls, 0);
}

TEST(HubReplaySource, RemovedSourceIsNoLongerAsked) {
  Hub hub(small_ring(2));
  auto source = std::make_shared<FakeSource>();
  hub.add_replay_source(source);
  hub.remove_replay_source(source.get());
  for (int i = 1; i <= 6; ++i) hub.publish("c", "x", "message", false);
  auto sub = mailbox(hub);
  EXPECT_EQ(hub.subscribe(sub, {"c"}, id(1)), ResumeOutcome::gap);
  EXPECT_EQ(source->calls, 0);
}

using kafka::detail::ReplayIndex;

TEST(ReplayIndex, LooksUpPositionsInRange) {
  ReplayIndex index(100, 10);
  index.record("a", 1, "t", 0, 10);
  index.record("b", 2, "t", 1, 5);
  index.record("a", 3, "t", 1, 6);
  index.record("a", 4, "u", 0, 0);
  const auto lookup = index.lookup("a", 1, 4);
  ASSERT_TRUE(lookup.covered);
  ASSERT_EQ(lookup.positions.size(), 2U);
  EXPECT_EQ(lookup.positions[0].first.topic, "t");
  EXPECT_EQ(lookup.positions[0].first.partition, 1);
  EXPECT_EQ(lookup.positions[0].second.offset, 6);
  EXPECT_EQ(lookup.positions[1].first.topic, "u");
  EXPECT_EQ(lookup.positions[1].second.seq, 4U);
  EXPECT_FALSE(index.lookup("unknown", 0, 10).covered);
}

TEST(ReplayIndex, BoundedPerChannelReportsUncoveredBeyondTheBound) {
  ReplayIndex index(3, 10);
  for (std::uint64_t seq = 1; seq <= 10; ++seq) index.record("a", seq, "t", 0, 100 + seq);
  EXPECT_EQ(index.entries(), 3U);
  EXPECT_FALSE(index.lookup("a", 6, 10).covered);  // seq 7 was trimmed
  const auto lookup = index.lookup("a", 7, 10);
  ASSERT_TRUE(lookup.covered);
  EXPECT_EQ(lookup.positions.size(), 3U);
}

TEST(ReplayIndex, EvictsTheLeastRecentlyRecordedChannel) {
  ReplayIndex index(10, 2);
  index.record("a", 1, "t", 0, 1);
  index.record("b", 2, "t", 0, 2);
  index.record("a", 3, "t", 0, 3);
  index.record("c", 4, "t", 0, 4);  // evicts b
  EXPECT_EQ(index.channels(), 2U);
  EXPECT_FALSE(index.lookup("b", 0, 10).covered);
  EXPECT_TRUE(index.lookup("a", 0, 10).covered);
  EXPECT_EQ(index.entries(), 3U);
}

TEST(ReplayIndex, TotalBoundEvictsTheOldestEntriesAcrossChannels) {
  // 1000 channels each well under its own bound would hold 5000 entries.
  ReplayIndex index(10, 10'000, 100);
  std::uint64_t seq = 0;
  for (int round = 0; round < 5; ++round) {
    for (int c = 0; c < 1000; ++c) index.record("ch" + std::to_string(c), ++seq, "t", 0, seq);
  }
  EXPECT_EQ(index.entries(), 100U);
  EXPECT_EQ(index.evicted(), 4900U);
  // The survivors are the newest 100 records: the last round's channels 900-999.
  const auto kept = index.lookup("ch999", seq - 1, seq);
  ASSERT_TRUE(kept.covered);
  ASSERT_EQ(kept.positions.size(), 1U);
  EXPECT_EQ(kept.positions[0].second.seq, seq);
  // A channel whose entries were all evicted answers uncovered (a gap), not
  // an empty "nothing happened" replay.
  EXPECT_FALSE(index.lookup("ch0", 0, seq).covered);
  EXPECT_FALSE(index.lookup("ch899", seq - 200, seq).covered);
}

TEST(ReplayIndex, TotalBoundKeepsOrderWithPerChannelTrimming) {
  ReplayIndex index(2, 10, 3);
  index.record("a", 1, "t", 0, 1);
  index.record("a", 2, "t", 0, 2);
  index.record("b", 3, "t", 0, 3);
  index.record("a", 4, "t", 0, 4);  // per-channel trim drops a/1; total 3
  EXPECT_EQ(index.evicted(), 0U);
  index.record("b", 5, "t", 0, 5);  // total 4: a/2 is the oldest and goes
  EXPECT_EQ(index.entries(), 3U);
  EXPECT_EQ(index.evicted(), 1U);
  EXPECT_FALSE(index.lookup("a", 1, 10).covered);
  const auto a = index.lookup("a", 2, 10);
  ASSERT_TRUE(a.covered);
  ASSERT_EQ(a.positions.size(), 1U);
  EXPECT_EQ(a.positions[0].second.seq, 4U);
  EXPECT_TRUE(index.lookup("b", 0, 10).covered);
}

}  // namespace
}  // namespace sessionstream
