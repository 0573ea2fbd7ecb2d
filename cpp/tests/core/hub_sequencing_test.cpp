// External sequencing: the hub under ids a shared bus assigned (Redis Streams),
// the same on every node. The bus itself is tested against a real Redis in
// sources/redis/stream_bus_test.cpp; these tests pin the hub's side of the contract.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/core/hub.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using test::drain_sse;
using test::drain_sse_stream;
using test::event_names;
using test::event_seqs;

constexpr std::uint64_t kCluster = 0xc1;

HubConfig external(std::size_t history = 1024) {
  HubConfig c;
  c.sequencing = Sequencing::external;
  c.history.max_events = history;
  return c;
}

MailboxOptions mailbox_options() {
  return {Framing::sse, OverflowPolicy::disconnect, {1 << 16, std::size_t{1} << 26}};
}

EventId at(std::uint64_t seq) {
  return EventId{kCluster, seq};
}

TEST(Sequencing, LocalHubRefusesBusIds) {
  Hub hub;
  EXPECT_THROW(hub.publish_sequenced("a", "x", "t", false, EventId{hub.epoch(), 1}),
               InvalidArgument);
}

TEST(Sequencing, EventsKeepTheIdsTheBusGave) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 10);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  hub.subscribe(mailbox, {"a"});
  ASSERT_TRUE(hub.publish_sequenced("a", "x", "t", false, at(11)));
  ASSERT_TRUE(hub.publish_sequenced("a", "y", "t", false, at(15)));
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{11, 15}));
  EXPECT_EQ(hub.head_id(), at(15).to_string());
}

TEST(Sequencing, ReReadsAndForeignEpochsPublishNothing) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  hub.subscribe(mailbox, {"a"});
  static_cast<void>(drain_sse(*mailbox));
  ASSERT_TRUE(hub.publish_sequenced("a", "x", "t", false, at(1)));
  EXPECT_EQ(hub.publish_sequenced("a", "again", "t", false, at(1)), nullptr);
  EXPECT_EQ(hub.publish_sequenced("a", "old", "t", false, EventId{kCluster + 1, 2}), nullptr);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{1}));
}

TEST(Sequencing, BadInputIsRefusedLikeAPublish) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  EXPECT_THROW(hub.publish_sequenced("bad channel", "x", "t", false, at(1)), InvalidArgument);
  EXPECT_THROW(hub.publish_sequenced("a", std::string{"\xff"}, "t", false, at(1)), InvalidUtf8);
  EXPECT_THROW(hub.publish_sequenced("a", std::string(2 << 20, 'x'), "t", false, at(1)),
               PayloadTooLarge);
  EXPECT_THROW(hub.validate_event("a", std::string{"\xc3"}, "t"), InvalidUtf8);
  EXPECT_NO_THROW(hub.validate_event("a", "fine", ""));
  // Nothing refused moved the head.
  EXPECT_TRUE(hub.publish_sequenced("a", "x", "t", false, at(1)));
}

TEST(Sequencing, LocalPublishesAreTransient) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 4);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  hub.subscribe(mailbox, {"a"});
  static_cast<void>(drain_sse_stream(*mailbox));
  const auto event = hub.publish("a", "hello", "note", false);
  EXPECT_TRUE(event->id_text().empty());
  EXPECT_EQ(event->sse_frame(), "event: note\ndata: hello\n\n");
  EXPECT_EQ(event->ws_object(), R"({"type":"event","channel":"a","event":"note","data":"hello"})");
  EXPECT_EQ(hub.head_id(), at(4).to_string());
  EXPECT_EQ(Metrics::read(hub.metrics().transient), 1u);
  // Not kept: a resume from the head replays nothing.
  const auto later = hub.make_mailbox(mailbox_options(), nullptr);
  EXPECT_EQ(hub.subscribe(later, {"a"}, at(4).to_string()), ResumeOutcome::exact);
  EXPECT_EQ(later->pending_events(), 0u);
}

TEST(Sequencing, ResumeAcrossNodesIsExact) {
  // Two nodes read the same bus: an id seen on one resumes on the other.
  Hub node_a{external()};
  Hub node_b{external()};
  for (Hub* hub : {&node_a, &node_b}) {
    hub->adopt_epoch(kCluster, 0);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
      hub->publish_sequenced(seq % 2 ? "a" : "b", std::to_string(seq), "t", false, at(seq));
    }
  }
  const auto resumed = node_b.make_mailbox(mailbox_options(), nullptr);
  EXPECT_EQ(node_b.subscribe(resumed, {"a", "b"}, at(2).to_string()), ResumeOutcome::exact);
  EXPECT_EQ(event_seqs(drain_sse(*resumed)), (std::vector<std::uint64_t>{3, 4, 5}));
}

TEST(Sequencing, AdoptingAnotherEpochResetsOldIds) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  hub.publish_sequenced("a", "x", "t", false, at(1));
  hub.adopt_epoch(kCluster + 1, 0);  // the bus lost its data and started over
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, at(1).to_string()), ResumeOutcome::reset);
  EXPECT_EQ(hub.epoch(), kCluster + 1);
  // The old ring is gone: the new epoch's first event is not shadowed by it.
  EXPECT_TRUE(hub.publish_sequenced("a", "y", "t", false, EventId{kCluster + 1, 1}));
}

TEST(Sequencing, LostEventsGapLiveSubscribersAndOldResumes) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  hub.publish_sequenced("a", "x", "t", false, at(1));
  const auto live = hub.make_mailbox(mailbox_options(), nullptr);
  hub.subscribe(live, {"a"});
  static_cast<void>(drain_sse_stream(*live));
  hub.mark_lost(7);  // 2..7 were trimmed before this node read them
  hub.publish_sequenced("a", "y", "t", false, at(8));
  const auto stream = drain_sse_stream(*live);
  EXPECT_EQ(event_names(stream.messages), (std::vector<std::string>{"gap", "t"}));
  EXPECT_EQ(stream.last_event_id, at(8).to_string());

  const auto late = hub.make_mailbox(mailbox_options(), nullptr);
  EXPECT_EQ(hub.subscribe(late, {"a"}, at(1).to_string()), ResumeOutcome::gap);
  EXPECT_EQ(Metrics::read(hub.metrics().lost_gaps), 1u);
}

// A replay source that sequences the hub: catch_up publishes what the client
// already saw elsewhere, as the bus's reader would.
class CatchingUpSource final : public ReplaySource {
 public:
  explicit CatchingUpSource(Hub& hub) : hub_(hub) {}
  std::optional<std::vector<EventPtr>> replay(std::string_view, std::uint64_t,
                                              std::uint64_t) override {
    return std::nullopt;
  }
  bool catch_up(std::uint64_t epoch, std::uint64_t seq) override {
    ++calls;
    if (!reachable) return false;
    for (std::uint64_t next = 3; next <= seq + 1; ++next) {
      hub_.publish_sequenced("a", std::to_string(next), "t", false, EventId{epoch, next});
    }
    return true;
  }
  Hub& hub_;
  bool reachable = true;
  int calls = 0;
};

TEST(Sequencing, AResumeAheadOfThisNodeWaitsForTheBus) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  hub.publish_sequenced("a", "1", "t", false, at(1));
  hub.publish_sequenced("a", "2", "t", false, at(2));
  auto source = std::make_shared<CatchingUpSource>(hub);
  hub.add_replay_source(source);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  // Seen on another node through 4; this node has 2; the bus brings 3..5.
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, at(4).to_string()), ResumeOutcome::exact);
  EXPECT_EQ(source->calls, 1);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{5}));
}

TEST(Sequencing, AResumeAheadOfAnUnreachableBusIsReset) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 2);
  auto source = std::make_shared<CatchingUpSource>(hub);
  source->reachable = false;
  hub.add_replay_source(source);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, at(9).to_string()), ResumeOutcome::reset);
}

TEST(Sequencing, ConcurrentBusAndLocalPublishesKeepIdsOrdered) {
  Hub hub{external()};
  hub.adopt_epoch(kCluster, 0);
  const auto mailbox = hub.make_mailbox(mailbox_options(), nullptr);
  hub.subscribe(mailbox, {"a"});
  static_cast<void>(drain_sse_stream(*mailbox));
  std::jthread local([&] {
    for (int i = 0; i < 2000; ++i) hub.publish("a", "x", "local", false);
  });
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) {
    hub.publish_sequenced("a", "x", "t", false, at(seq));
  }
  local.join();
  std::vector<std::uint64_t> seqs;
  for (const auto& event : mailbox->take_events(1 << 20).events) {
    if (!event->id_text().empty()) seqs.push_back(event->id().seq);
  }
  ASSERT_EQ(seqs.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
}

TEST(HubSequencingNames, ParseLocalAndExternalOnly) {
  EXPECT_EQ(parse_sequencing("local"), Sequencing::local);
  EXPECT_EQ(parse_sequencing("external"), Sequencing::external);
  EXPECT_THROW((void)parse_sequencing("global"), InvalidArgument);
  EXPECT_THROW((void)parse_sequencing(""), InvalidArgument);
}

}  // namespace
}  // namespace sessionstream
