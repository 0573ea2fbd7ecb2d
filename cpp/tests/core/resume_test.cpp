#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/utf8.hpp"
#include "sessionstream/core/hub.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using test::drain_sse;
using test::drain_sse_stream;
using test::event_names;
using test::event_seqs;
using test::is_valid_json;
using test::parse_sse_stream;
using test::SseMessage;

constexpr std::uint64_t kEpoch = 0x5eed;

HubConfig config(std::size_t history = 1024, std::chrono::milliseconds max_age = 300'000ms) {
  HubConfig c;
  c.epoch = kEpoch;
  c.history.max_events = history;
  c.history.max_age = max_age;
  return c;
}

MailboxOptions big_mailbox(Framing framing = Framing::sse) {
  return {framing, OverflowPolicy::disconnect, {1 << 20, std::size_t{1} << 30}};
}

std::string id(std::uint64_t seq) {
  return EventId{kEpoch, seq}.to_string();
}

TEST(Resume, WithoutAnIdIsLive) {
  Hub hub{config()};
  hub.publish("a", "before", "t", false);
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}), ResumeOutcome::live);
  // Nothing is replayed: the one pending frame is the position, which only
  // sets the client's last event id.
  EXPECT_EQ(mailbox->pending_events(), 1u);
  const auto position = drain_sse_stream(*mailbox);
  EXPECT_TRUE(position.messages.empty());
  EXPECT_EQ(position.last_event_id, id(1));
  hub.publish("a", "after", "t", false);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{2}));
}

// The reason for the position frame: a client dropped before its first event
// reconnects with a Last-Event-ID and gets what it missed meanwhile.
TEST(Resume, ClientDroppedBeforeItsFirstEventResumesFromItsPosition) {
  Hub hub{config()};
  hub.publish("a", "before", "t", false);  // 1
  const auto first = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(first, {"a"}), ResumeOutcome::live);
  const auto seen = drain_sse_stream(*first);
  ASSERT_TRUE(seen.messages.empty());
  hub.detach(first);                       // the connection drops
  hub.publish("a", "missed", "t", false);  // 2
  hub.publish("a", "missed", "t", false);  // 3

  const auto second = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(second, {"a"}, seen.last_event_id), ResumeOutcome::exact);
  EXPECT_EQ(event_seqs(drain_sse(*second)), (std::vector<std::uint64_t>{2, 3}));
}

TEST(Resume, PositionOfAnEmptyHubIsResumable) {
  Hub hub{config()};
  const auto first = hub.make_mailbox(big_mailbox(), nullptr);
  hub.subscribe(first, {"a"});
  const auto seen = drain_sse_stream(*first);
  EXPECT_EQ(seen.last_event_id, id(0));
  hub.detach(first);
  hub.publish("a", "missed", "t", false);

  const auto second = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(second, {"a"}, seen.last_event_id), ResumeOutcome::exact);
  EXPECT_EQ(event_seqs(drain_sse(*second)), (std::vector<std::uint64_t>{1}));
}

TEST(Resume, ReplaysExactlyTheMissedEventsOfEveryChannelInOrder) {
  Hub hub{config()};
  const auto a1 = hub.publish("a", "a1", "t", false);  // seen by the client
  hub.publish("b", "b1", "t", false);                  // 2
  hub.publish("c", "c1", "t", false);                  // 3, not subscribed
  hub.publish("a", "a2", "t", false);                  // 4
  hub.publish("b", "b2", "t", false);                  // 5
  hub.publish("c", "c2", "t", false);                  // 6

  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a", "b"}, a1->id_text()), ResumeOutcome::exact);
  hub.publish("b", "b3", "t", false);  // 7, live after the replay
  hub.publish("c", "c3", "t", false);  // 8

  const auto messages = drain_sse(*mailbox);
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{2, 4, 5, 7}));
  std::vector<std::string> data;
  for (const auto& message : messages) data.push_back(message.data);
  EXPECT_EQ(data, (std::vector<std::string>{"b1", "a2", "b2", "b3"}));
  EXPECT_EQ(Metrics::read(hub.metrics().resumes_exact), 1u);
}

TEST(Resume, FromTheHeadReplaysNothing) {
  Hub hub{config()};
  hub.publish("a", "x", "t", false);
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, hub.head_id()), ResumeOutcome::exact);
  EXPECT_EQ(mailbox->pending_events(), 0u);
}

TEST(Resume, EvictedHistoryGivesAGapFrameWithoutAnIdBeforeReplayedEvents) {
  Hub hub{config(3)};
  for (int i = 1; i <= 6; ++i) hub.publish("a", std::to_string(i), "t", false);
  hub.publish("other", "7", "t", false);
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(1)), ResumeOutcome::gap);

  const auto stream = drain_sse_stream(*mailbox, nullptr, nullptr, id(1));
  const auto& messages = stream.messages;
  ASSERT_EQ(messages.size(), 4u);
  const SseMessage& gap = messages[0];
  EXPECT_EQ(gap.event, "gap");
  // Replayed events follow, so the head goes in the data but not in the id.
  EXPECT_FALSE(gap.has_id) << gap.id;
  EXPECT_EQ(stream.last_event_id, id(6));
  EXPECT_TRUE(is_valid_json(gap.data)) << gap.data;
  EXPECT_NE(gap.data.find("\"reason\":\"history_evicted\""), std::string::npos) << gap.data;
  EXPECT_NE(gap.data.find("\"channels\":[\"a\"]"), std::string::npos) << gap.data;
  EXPECT_NE(gap.data.find("\"head\":\"" + id(7) + "\""), std::string::npos) << gap.data;
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(Metrics::read(hub.metrics().resumes_gap), 1u);
}

// Cut off right after the gap, a client must still resume from before the
// replayed events rather than from the head (which would skip them).
TEST(Resume, ClientCutOffRightAfterTheGapResumesFromBeforeTheReplay) {
  Hub hub{config(3)};
  for (int i = 1; i <= 6; ++i) hub.publish("a", std::to_string(i), "t", false);
  const auto first = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(first, {"a"}, id(1)), ResumeOutcome::gap);
  const auto gap_only = first->take(0);  // one frame: the gap
  EXPECT_EQ(gap_only.events, 1u);
  const auto seen = parse_sse_stream(gap_only.data, id(1));
  ASSERT_EQ(seen.messages.size(), 1u);
  EXPECT_EQ(seen.messages[0].event, "gap");
  EXPECT_EQ(seen.last_event_id, id(1));
  hub.detach(first);

  const auto second = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(second, {"a"}, seen.last_event_id), ResumeOutcome::gap);
  EXPECT_EQ(event_seqs(drain_sse(*second)), (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST(Resume, GapWithNothingToReplayCarriesTheHeadAsItsId) {
  Hub hub{config(1024, 20ms)};
  for (int i = 0; i < 3; ++i) hub.publish("a", "x", "t", false);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(hub.sweep(), 1u);
  hub.publish("other", "x", "t", false);  // 4, the head

  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(1)), ResumeOutcome::gap);
  const auto stream = drain_sse_stream(*mailbox, nullptr, nullptr, id(1));
  ASSERT_EQ(stream.messages.size(), 1u);
  EXPECT_EQ(stream.messages[0].event, "gap");
  EXPECT_TRUE(stream.messages[0].has_id);
  EXPECT_EQ(stream.messages[0].id, id(4));
  EXPECT_NE(stream.messages[0].data.find("\"head\":\"" + id(4) + "\""), std::string::npos)
      << stream.messages[0].data;
  EXPECT_EQ(stream.last_event_id, id(4));

  // In WebSocket framing the id is a member of the gap object, and only then.
  const auto ws = hub.make_mailbox(big_mailbox(Framing::websocket), nullptr);
  EXPECT_EQ(hub.subscribe(ws, {"a"}, id(1)), ResumeOutcome::gap);
  const auto batch = ws->take(1 << 20);
  EXPECT_TRUE(is_valid_json(batch.data)) << batch.data;
  EXPECT_NE(batch.data.find(",\"id\":\"" + id(4) + "\"}]"), std::string::npos) << batch.data;
}

// A replay larger than the mailbox gets a matching allowance: the first live
// event after it is not an overflow, and once drained the bound is back.
TEST(Resume, ReplayLargerThanTheMailboxDoesNotOverflowTheNextLiveEvent) {
  Hub hub{config()};
  for (int i = 1; i <= 7; ++i) hub.publish("a", std::to_string(i), "t", false);
  const auto mailbox =
      hub.make_mailbox({Framing::sse, OverflowPolicy::disconnect, {2, 1 << 20}}, nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(0)), ResumeOutcome::exact);
  EXPECT_EQ(mailbox->pending_events(), 7u);
  hub.publish("a", "8", "t", false);
  EXPECT_FALSE(mailbox->closed());
  EXPECT_EQ(hub.subscriber_count("a"), 1u);
  EXPECT_EQ(Metrics::read(hub.metrics().slow_consumer_disconnects), 0u);
  const auto messages = drain_sse(*mailbox);
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  std::vector<std::string> data;
  for (const auto& message : messages) data.push_back(message.data);
  EXPECT_EQ(data, (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8"}));

  // Drained: the mailbox bound of 2 applies again.
  hub.publish("a", "9", "t", false);
  hub.publish("a", "10", "t", false);
  EXPECT_FALSE(mailbox->closed());
  hub.publish("a", "11", "t", false);
  EXPECT_TRUE(mailbox->closed());
  EXPECT_EQ(hub.subscriber_count("a"), 0u);
  EXPECT_EQ(Metrics::read(hub.metrics().slow_consumer_disconnects), 1u);
  bool closed = false;
  std::string reason;
  EXPECT_TRUE(drain_sse(*mailbox, &closed, &reason).empty());
  EXPECT_TRUE(closed);
  EXPECT_EQ(reason, close_reason::slow_consumer);
}

TEST(Resume, NoGapWhenOnlyAlreadySeenEventsWereEvicted) {
  Hub hub{config(3)};
  for (int i = 1; i <= 6; ++i) hub.publish("a", std::to_string(i), "t", false);
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(3)), ResumeOutcome::exact);
  const auto messages = drain_sse(*mailbox);
  EXPECT_EQ(event_names(messages), (std::vector<std::string>{"t", "t", "t"}));
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST(Resume, GapNamesOnlyTheChannelsThatLostEvents) {
  Hub hub{config(2)};
  for (int i = 0; i < 4; ++i) hub.publish("a", "a", "t", false);  // 1-4, 1-2 evicted
  hub.publish("b", "b", "t", false);                              // 5
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a", "b"}, id(1)), ResumeOutcome::gap);
  const auto messages = drain_sse(*mailbox);
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].data.find("\"channels\":[\"a\"]"), std::string::npos) << messages[0].data;
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{3, 4, 5}));
}

TEST(Resume, SweptChannelStillReportsItsGap) {
  Hub hub{config(1024, 20ms)};
  for (int i = 0; i < 3; ++i) hub.publish("a", "x", "t", false);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(hub.sweep(), 1u);
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(1)), ResumeOutcome::gap);
}

TEST(Resume, ChannelRecreatedAfterSweepStillReportsItsGap) {
  Hub hub{config(1024, 20ms)};
  for (int i = 0; i < 3; ++i) hub.publish("a", "x", "t", false);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(hub.sweep(), 1u);
  // Someone joins the channel again, bringing it back without history.
  const auto newcomer = hub.make_mailbox(big_mailbox(), nullptr);
  hub.subscribe(newcomer, {"a"});

  const auto returning = hub.make_mailbox(big_mailbox(), nullptr);
  EXPECT_EQ(hub.subscribe(returning, {"a"}, id(1)), ResumeOutcome::gap)
      << "events 2-3 were lost without a gap frame";
  const auto messages = drain_sse(*returning);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].event, "gap");
}

TEST(Resume, ResetForMalformedForeignOrFutureIds) {
  Hub hub{config()};
  hub.publish("a", "x", "t", false);
  hub.publish("a", "y", "t", false);
  struct Case {
    std::string last;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"garbage", "malformed_id"},
      {"", "malformed_id"},
      {EventId{kEpoch + 1, 1}.to_string(), "unknown_epoch"},
      {EventId{kEpoch, 1000}.to_string(), "future_id"},
  };
  for (const auto& c : cases) {
    const std::string head = hub.head_id();
    const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
    EXPECT_EQ(hub.subscribe(mailbox, {"a"}, c.last), ResumeOutcome::reset) << c.last;
    const auto messages = drain_sse(*mailbox);
    ASSERT_EQ(messages.size(), 1u) << c.last;
    EXPECT_EQ(messages[0].event, "reset");
    EXPECT_EQ(messages[0].id, head) << "the next Last-Event-ID must be current";
    EXPECT_TRUE(is_valid_json(messages[0].data)) << messages[0].data;
    EXPECT_NE(messages[0].data.find("\"reason\":\"" + c.reason + "\""), std::string::npos)
        << messages[0].data;
    // Live from the head: the next event arrives, nothing older.
    const auto next = hub.publish("a", "z", "t", false);
    EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{next->id().seq}));
    hub.detach(mailbox);
  }
  EXPECT_EQ(Metrics::read(hub.metrics().resumes_reset), cases.size());
}

TEST(Resume, ResetEchoesAHostileIdSafely) {
  Hub hub{config()};
  const auto mailbox = hub.make_mailbox(big_mailbox(Framing::websocket), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, "\"},\n\x01" + std::string(500, 'x')),
            ResumeOutcome::reset);
  const auto batch = mailbox->take(1 << 20);
  EXPECT_TRUE(is_valid_json(batch.data)) << batch.data;
  EXPECT_LT(batch.data.size(), 400u) << "the echoed id is not bounded";
}

TEST(Resume, ResetEchoesTheIdOnCharacterBoundaries) {
  Hub hub{config()};
  hub.publish("a", "x", "t", false);
  const std::string ascii63(63, 'x');
  struct Case {
    std::string last;
    std::string echoed;
  };
  const std::vector<Case> cases = {
      // 64 bytes would end inside the two-byte character: it is dropped whole.
      {ascii63 + "\xc3\xa9", ascii63},
      {ascii63 + "\xe2\x82\xac" + "tail", ascii63},
      {std::string(62, 'x') + "\xc3\xa9" + "tail", std::string(62, 'x') + "\xc3\xa9"},
      // Not UTF-8 at all (a native caller's raw header): U+FFFD, never raw bytes.
      {"id\xff", "id\xef\xbf\xbd"},
  };
  for (const auto& c : cases) {
    for (const Framing framing : {Framing::sse, Framing::websocket}) {
      const auto mailbox = hub.make_mailbox(big_mailbox(framing), nullptr);
      EXPECT_EQ(hub.subscribe(mailbox, {"a"}, c.last), ResumeOutcome::reset);
      const auto batch = mailbox->take(1 << 20);
      EXPECT_TRUE(is_valid_utf8(batch.data)) << testing::PrintToString(batch.data);
      std::string expected;
      append_json_string(expected, c.echoed);
      EXPECT_NE(batch.data.find("\"last_event_id\":" + expected + ","), std::string::npos)
          << batch.data;
      if (framing == Framing::websocket) {
        EXPECT_TRUE(is_valid_json(batch.data)) << batch.data;
      }
      hub.detach(mailbox);
    }
  }
}

TEST(Resume, WebSocketControlFramesAreValidJson) {
  Hub hub{config(1)};
  hub.publish("a", "1", "t", false);
  hub.publish("a", "{\"n\":2}", "t", true);
  const auto mailbox = hub.make_mailbox(big_mailbox(Framing::websocket), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, id(0)), ResumeOutcome::gap);
  const auto batch = mailbox->take(1 << 20);
  EXPECT_TRUE(is_valid_json(batch.data)) << batch.data;
  EXPECT_EQ(batch.data.rfind("[{\"type\":\"gap\"", 0), 0u) << batch.data;
  EXPECT_NE(batch.data.find("\"data\":{\"n\":2}"), std::string::npos) << batch.data;
}

TEST(Resume, AddingChannelsWithAnIdDoesNotRepeatLiveEvents) {
  Hub hub{config()};
  const auto mailbox = hub.make_mailbox(big_mailbox(), nullptr);
  hub.subscribe(mailbox, {"a"});
  const auto a1 = hub.publish("a", "a1", "t", false);  // delivered live
  hub.publish("a", "a2", "t", false);                  // delivered live
  hub.publish("b", "b1", "t", false);                  // missed: not yet on b
  EXPECT_EQ(hub.subscribe(mailbox, {"a", "b"}, a1->id_text()), ResumeOutcome::exact);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{1, 2, 3}));
}

// Publishes run on another thread while subscribers resume from points in the
// past: each must see every event of its channel after its point exactly once,
// in order.
TEST(Resume, ConcurrentPublishesAreNeitherMissedNorDuplicated) {
  Hub hub{config(1 << 20)};
  constexpr int kChannels = 4;
  constexpr std::uint64_t kEvents = 8000;
  constexpr int kResumers = 8;

  std::vector<std::uint64_t> published_channel(kEvents + 1, 0);  // seq -> channel index
  std::atomic<std::uint64_t> head{0};
  std::thread publisher([&] {
    for (std::uint64_t i = 0; i < kEvents; ++i) {
      const int channel = static_cast<int>(i % kChannels);
      const auto event = hub.publish("ch" + std::to_string(channel), std::to_string(i), "t", false);
      published_channel[event->id().seq] = static_cast<std::uint64_t>(channel);
      head.store(event->id().seq, std::memory_order_release);
    }
  });

  struct Resumer {
    MailboxPtr mailbox;
    int channel = 0;
    std::uint64_t from = 0;
  };
  std::vector<Resumer> resumers(kResumers);
  for (int r = 0; r < kResumers; ++r) {
    // Wait until the publisher is well under way, then resume from a point
    // some events back, so the replay and live fan-out overlap.
    const std::uint64_t threshold = (kEvents / (kResumers + 2)) * static_cast<std::uint64_t>(r + 1);
    while (head.load(std::memory_order_acquire) < threshold) std::this_thread::yield();
    Resumer& resumer = resumers[r];
    resumer.channel = r % kChannels;
    resumer.from = head.load(std::memory_order_acquire) - 40;
    resumer.mailbox = hub.make_mailbox(big_mailbox(), nullptr);
    const auto outcome =
        hub.subscribe(resumer.mailbox, {"ch" + std::to_string(resumer.channel)}, id(resumer.from));
    EXPECT_EQ(outcome, ResumeOutcome::exact);
  }
  publisher.join();

  for (const auto& resumer : resumers) {
    std::vector<std::uint64_t> expected;
    for (std::uint64_t seq = resumer.from + 1; seq <= kEvents; ++seq) {
      if (published_channel[seq] == static_cast<std::uint64_t>(resumer.channel)) {
        expected.push_back(seq);
      }
    }
    const auto seqs = event_seqs(drain_sse(*resumer.mailbox));
    ASSERT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
    EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end()) << "duplicate event";
    EXPECT_EQ(seqs, expected) << "resumer on ch" << resumer.channel << " from " << resumer.from;
  }
}

}  // namespace
}  // namespace sessionstream
