#include "sessionstream/core/mailbox.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::drain_sse;
using test::event_seqs;
using test::is_valid_json;
using test::make_event;
using test::parse_sse;
using Result = Mailbox::DeliverResult;

MailboxOptions options(std::size_t max_events, std::size_t max_bytes,
                       OverflowPolicy overflow = OverflowPolicy::disconnect,
                       Framing framing = Framing::sse) {
  return MailboxOptions{framing, overflow, MailboxLimits{max_events, max_bytes}};
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

// Reads and clears the eventfd counter: how many times the notifier signalled.
std::uint64_t signals(const Notifier& notifier) {
  std::uint64_t counter = 0;
  if (::read(notifier.fd(), &counter, sizeof counter) != sizeof counter) return 0;
  return counter;
}

TEST(Mailbox, QueuesWithinBothBounds) {
  Mailbox mailbox{1, options(4, 1 << 20), nullptr};
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    EXPECT_EQ(mailbox.deliver(make_event(seq, "abc")), Result::queued);
  }
  EXPECT_EQ(mailbox.pending_events(), 4u);
  EXPECT_EQ(mailbox.pending_bytes(), 4 * (3 + Event::kOverheadBytes));
  EXPECT_FALSE(mailbox.closed());
}

TEST(Mailbox, DisconnectPolicyClosesOnTheEventBoundAndFreesTheMailbox) {
  Mailbox mailbox{1, options(3, 1 << 20), nullptr};
  std::vector<EventPtr> events;
  for (std::uint64_t seq = 1; seq <= 4; ++seq) events.push_back(make_event(seq));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(mailbox.deliver(events[i]), Result::queued);
  EXPECT_EQ(events[0].use_count(), 2);  // the mailbox holds a reference

  EXPECT_EQ(mailbox.deliver(events[3]), Result::overflow_closed);
  EXPECT_TRUE(mailbox.closed());
  EXPECT_EQ(mailbox.pending_events(), 0u);
  EXPECT_EQ(mailbox.pending_bytes(), 0u);
  for (const auto& event : events) EXPECT_EQ(event.use_count(), 1) << "mailbox kept a reference";

  const auto batch = mailbox.take(1 << 20);
  EXPECT_TRUE(batch.closed);
  EXPECT_EQ(batch.close_reason, close_reason::slow_consumer);
  EXPECT_EQ(batch.events, 0u);
  EXPECT_TRUE(batch.data.empty());
  EXPECT_EQ(mailbox.deliver(make_event(5)), Result::already_closed);
}

TEST(Mailbox, DisconnectPolicyClosesOnTheByteBound) {
  const std::string ten(10, 'x');
  Mailbox mailbox{1, options(100, 2 * (10 + Event::kOverheadBytes)), nullptr};
  EXPECT_EQ(mailbox.deliver(make_event(1, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(2, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(3, ten)), Result::overflow_closed);
  const auto batch = mailbox.take(1 << 20);
  EXPECT_TRUE(batch.closed);
  EXPECT_EQ(batch.close_reason, close_reason::slow_consumer);
}

TEST(Mailbox, LoneOversizeEventFitsAnEmptyMailboxOnly) {
  Mailbox mailbox{1, options(100, 100), nullptr};
  EXPECT_EQ(mailbox.deliver(make_event(1, std::string(1000, 'x'))), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(2)), Result::overflow_closed);
}

TEST(Mailbox, UnboundedDeliveryIgnoresTheBounds) {
  Mailbox mailbox{1, options(2, 1 << 20), nullptr};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    EXPECT_EQ(mailbox.deliver(make_event(seq), /*bounded=*/false), Result::queued);
  }
  EXPECT_EQ(event_seqs(drain_sse(mailbox)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

TEST(Mailbox, ReplayLargerThanTheMailboxLetsTheNextLiveEventIn) {
  Mailbox mailbox{1, options(2, 1 << 20), nullptr};
  for (std::uint64_t seq = 1; seq <= 7; ++seq) {
    EXPECT_EQ(mailbox.deliver(make_event(seq), /*bounded=*/false), Result::queued);
  }
  EXPECT_EQ(mailbox.deliver(make_event(8)), Result::queued)
      << "the replay's own size made the first live event overflow";
  EXPECT_FALSE(mailbox.closed());
  EXPECT_EQ(event_seqs(drain_sse(mailbox)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  // Drained: the allowance is gone and the bound of 2 applies again.
  EXPECT_EQ(mailbox.deliver(make_event(9)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(10)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(11)), Result::overflow_closed);
}

TEST(Mailbox, ReplayAllowanceShrinksAsTheReplayDrains) {
  Mailbox mailbox{1, options(2, 1 << 20), nullptr};
  for (std::uint64_t seq = 1; seq <= 7; ++seq) mailbox.deliver(make_event(seq), false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(mailbox.take(0).events, 1u);
  // Four replayed events left, allowing four beyond the bound of 2.
  EXPECT_EQ(mailbox.deliver(make_event(8)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(9)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(10)), Result::overflow_closed);
}

TEST(Mailbox, ReplayAllowanceCoversBytesToo) {
  const std::string ten(10, 'x');
  const std::size_t cost = ten.size() + Event::kOverheadBytes;
  Mailbox mailbox{1, options(100, 2 * cost), nullptr};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq, ten), false);
  EXPECT_EQ(mailbox.pending_bytes(), 5 * cost);
  EXPECT_EQ(mailbox.deliver(make_event(6, ten)), Result::queued);
  EXPECT_EQ(event_seqs(drain_sse(mailbox)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));

  EXPECT_EQ(mailbox.deliver(make_event(7, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(8, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(9, ten)), Result::overflow_closed);
}

// A resume that adds channels replays behind live events already queued, so
// the replay is not what take() drains first; once everything is drained no
// allowance may be left over, in events or in bytes.
TEST(Mailbox, NoReplayAllowanceOutlivesTheDrainedMailbox) {
  const std::string ten(10, 'x');
  const std::size_t cost = ten.size() + Event::kOverheadBytes;
  Mailbox mailbox{1, options(100, 2 * cost), nullptr};
  EXPECT_EQ(mailbox.deliver(make_event(1, "x")), Result::queued);  // live, small
  EXPECT_EQ(mailbox.deliver(make_event(2, std::string(1000, 'r')), false), Result::queued);
  EXPECT_EQ(mailbox.take(0).events, 1u);
  EXPECT_EQ(mailbox.take(0).events, 1u);
  EXPECT_EQ(mailbox.pending_events(), 0u);

  EXPECT_EQ(mailbox.deliver(make_event(3, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(4, ten)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(5, ten)), Result::overflow_closed)
      << "a drained replay left a byte allowance behind";
}

TEST(Mailbox, PositionFrameIsPendingButNotCountedAgainstTheBounds) {
  Mailbox mailbox{1, options(2, 1 << 20), nullptr};
  mailbox.deliver_control(Event::position("1-0"));
  EXPECT_EQ(mailbox.pending_events(), 1u);
  EXPECT_EQ(mailbox.pending_bytes(), 0u);
  EXPECT_EQ(mailbox.deliver(make_event(1)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(2)), Result::queued);
  EXPECT_EQ(mailbox.pending_events(), 3u);
  EXPECT_EQ(mailbox.deliver(make_event(3)), Result::overflow_closed);
}

TEST(Mailbox, DropOldestKeepsTheNewestAndStartsWithAGap) {
  Mailbox mailbox{1, options(3, 1 << 20, OverflowPolicy::drop_oldest), nullptr};
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    EXPECT_EQ(mailbox.deliver(make_event(seq)), seq <= 3 ? Result::queued : Result::dropped_oldest);
  }
  EXPECT_FALSE(mailbox.closed());
  EXPECT_EQ(mailbox.pending_events(), 3u);

  const auto batch = mailbox.take(1 << 20);
  EXPECT_EQ(batch.events, 3u);
  const auto messages = parse_sse(batch.data);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].event, "gap");
  EXPECT_FALSE(messages[0].has_id);
  EXPECT_NE(messages[0].data.find("\"missed\":7"), std::string::npos) << messages[0].data;
  EXPECT_TRUE(is_valid_json(messages[0].data));
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{8, 9, 10}));

  // The gap was reported once; the next batch has none.
  mailbox.deliver(make_event(11));
  const auto next = parse_sse(mailbox.take(1 << 20).data);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, "1-11");
}

TEST(Mailbox, DropOldestByBytes) {
  const std::string ten(10, 'x');
  Mailbox mailbox{1, options(100, 2 * (10 + Event::kOverheadBytes), OverflowPolicy::drop_oldest),
                  nullptr};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq, ten));
  EXPECT_EQ(mailbox.pending_bytes(), 2 * (10 + Event::kOverheadBytes));
  const auto messages = drain_sse(mailbox);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages[0].event, "gap");
  EXPECT_NE(messages[0].data.find("\"missed\":3"), std::string::npos) << messages[0].data;
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{4, 5}));
}

TEST(Mailbox, ControlFramesDoNotCountAgainstTheBounds) {
  Mailbox mailbox{1, options(2, 1 << 20), nullptr};
  mailbox.deliver_control(Event::control("gap", R"("reason":"history_evicted")"));
  EXPECT_EQ(mailbox.deliver(make_event(1)), Result::queued);
  EXPECT_EQ(mailbox.deliver(make_event(2)), Result::queued);
  EXPECT_FALSE(mailbox.closed());
  const auto messages = drain_sse(mailbox);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].event, "gap");
}

TEST(Mailbox, DropOldestNeverDropsAControlFrame) {
  Mailbox mailbox{1, options(2, 1 << 20, OverflowPolicy::drop_oldest), nullptr};
  mailbox.deliver_control(Event::control("reset", R"("reason":"unknown_epoch")", "1-0"));
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq));
  const auto messages = drain_sse(mailbox);
  std::vector<std::string> names = test::event_names(messages);
  // The reset told the client where it stands; losing it would be a silent hole.
  EXPECT_EQ(std::count(names.begin(), names.end(), "reset"), 1) << testing::PrintToString(names);
  EXPECT_EQ(std::count(names.begin(), names.end(), "gap"), 1) << testing::PrintToString(names);
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{4, 5}));
}

TEST(Mailbox, TakeSplitsByBytesButAlwaysReturnsAFrame) {
  Mailbox mailbox{1, options(100, 1 << 20), nullptr};
  for (std::uint64_t seq = 1; seq <= 10; ++seq)
    mailbox.deliver(make_event(seq, std::string(100, 'x')));

  const auto one = mailbox.take(0);
  EXPECT_EQ(one.events, 1u);
  EXPECT_EQ(parse_sse(one.data).size(), 1u);

  std::vector<std::uint64_t> seqs = event_seqs(parse_sse(one.data));
  int batches = 0;
  while (mailbox.pending_events() > 0) {
    const auto batch = mailbox.take(250);
    ASSERT_GE(batch.events, 1u);
    ASSERT_LT(batch.events, 9u) << "take ignored max_bytes";
    EXPECT_LE(batch.data.size(), 250u + 2 * (100 + Event::kOverheadBytes));
    const auto parsed = event_seqs(parse_sse(batch.data));
    EXPECT_EQ(parsed.size(), batch.events);
    seqs.insert(seqs.end(), parsed.begin(), parsed.end());
    ++batches;
  }
  EXPECT_GE(batches, 3);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(mailbox.pending_bytes(), 0u);
}

TEST(Mailbox, WebSocketBatchIsOneJsonArray) {
  Mailbox mailbox{1, options(100, 1 << 20, OverflowPolicy::disconnect, Framing::websocket),
                  nullptr};
  const auto a = make_event(1, R"({"k":[1,2,{"x":null}]})", "c", "t", true);
  const auto b = make_event(2, "quote \" newline \n tab \t", "c", "t", false);
  const auto c = make_event(3, "3.5e2", "c", "t", true);
  for (const auto& event : {a, b, c}) mailbox.deliver(event);
  const auto batch = mailbox.take(1 << 20);
  EXPECT_EQ(batch.events, 3u);
  EXPECT_EQ(batch.data, "[" + a->ws_object() + "," + b->ws_object() + "," + c->ws_object() + "]");
  EXPECT_TRUE(is_valid_json(batch.data)) << batch.data;

  // A single frame and a gap-led batch are arrays too.
  mailbox.deliver(make_event(4));
  EXPECT_TRUE(is_valid_json(mailbox.take(1 << 20).data));

  Mailbox dropping{2, options(1, 1 << 20, OverflowPolicy::drop_oldest, Framing::websocket),
                   nullptr};
  for (std::uint64_t seq = 1; seq <= 3; ++seq) dropping.deliver(make_event(seq));
  const auto gapped = dropping.take(1 << 20);
  EXPECT_TRUE(is_valid_json(gapped.data)) << gapped.data;
  EXPECT_EQ(gapped.data.rfind("[{\"type\":\"gap\"", 0), 0u) << gapped.data;
}

TEST(Mailbox, NotifierIsMarkedOncePerEmptyToNonEmptyTransition) {
  auto notifier = std::make_shared<Notifier>();
  Mailbox mailbox{42, options(1000, 1 << 20), notifier};
  EXPECT_FALSE(readable(notifier->fd()));

  for (std::uint64_t seq = 1; seq <= 100; ++seq) mailbox.deliver(make_event(seq));
  EXPECT_TRUE(readable(notifier->fd()));
  EXPECT_EQ(signals(*notifier), 1u) << "one wake-up must serve all 100 deliveries";
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{42}));

  // Still non-empty: more deliveries add no token.
  mailbox.deliver(make_event(101));
  EXPECT_TRUE(notifier->take_ready().empty());
  EXPECT_FALSE(readable(notifier->fd()));

  (void)drain_sse(mailbox);
  EXPECT_TRUE(notifier->take_ready().empty());
  mailbox.deliver(make_event(102));
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{42}));
}

TEST(Mailbox, ManySubscribersShareOneWakeUp) {
  auto notifier = std::make_shared<Notifier>();
  std::vector<std::unique_ptr<Mailbox>> subscribers;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    subscribers.push_back(std::make_unique<Mailbox>(id, options(10, 1 << 20), notifier));
  }
  for (const std::uint64_t id : {2, 1, 3}) subscribers[id - 1]->deliver(make_event(id));
  EXPECT_EQ(signals(*notifier), 1u);
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{2, 1, 3}));
}

TEST(Mailbox, PartialTakeLeavesTheMailboxReady) {
  auto notifier = std::make_shared<Notifier>();
  Mailbox mailbox{7, options(100, 1 << 20), notifier};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq));
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{7}));

  // A consumer driven only by ready tokens must learn that frames remain.
  EXPECT_EQ(mailbox.take(1).events, 1u);
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(mailbox.take(1 << 20).events, 4u);
  EXPECT_TRUE(notifier->take_ready().empty());
}

TEST(Mailbox, CloseLetsPendingFramesDrainForOrdinaryReasons) {
  auto notifier = std::make_shared<Notifier>();
  Mailbox mailbox{3, options(100, 1 << 20), notifier};
  for (std::uint64_t seq = 1; seq <= 3; ++seq) mailbox.deliver(make_event(seq));
  EXPECT_TRUE(mailbox.close(close_reason::replaced));
  EXPECT_FALSE(mailbox.close(close_reason::shutdown)) << "the first reason wins";
  EXPECT_EQ(mailbox.deliver(make_event(4)), Result::already_closed);
  EXPECT_EQ(mailbox.pending_events(), 3u);

  const auto first = mailbox.take(1);
  EXPECT_EQ(first.events, 1u);
  EXPECT_FALSE(first.closed) << "closed reported before the pending frames";
  const auto rest = mailbox.take(1 << 20);
  EXPECT_EQ(rest.events, 2u);
  EXPECT_TRUE(rest.closed);
  EXPECT_EQ(rest.close_reason, close_reason::replaced);
  EXPECT_EQ(event_seqs(parse_sse(first.data + rest.data)), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(Mailbox, ClosingAnIdleMailboxWakesItsConsumer) {
  auto notifier = std::make_shared<Notifier>();
  Mailbox mailbox{9, options(100, 1 << 20), notifier};
  EXPECT_TRUE(mailbox.close(close_reason::client_gone));
  EXPECT_EQ(notifier->take_ready(), (std::vector<std::uint64_t>{9}));
  const auto batch = mailbox.take(1 << 20);
  EXPECT_TRUE(batch.closed);
  EXPECT_EQ(batch.close_reason, close_reason::client_gone);
}

TEST(Mailbox, SlowConsumerCloseDiscardsPendingFrames) {
  Mailbox mailbox{1, options(100, 1 << 20), nullptr};
  const auto event = make_event(1);
  mailbox.deliver(event);
  mailbox.deliver_control(Event::control("gap", ""));
  EXPECT_TRUE(mailbox.close(close_reason::slow_consumer));
  EXPECT_EQ(mailbox.pending_events(), 0u);
  EXPECT_EQ(event.use_count(), 1);
  const auto batch = mailbox.take(1 << 20);
  EXPECT_EQ(batch.events, 0u);
  EXPECT_TRUE(batch.closed);
}

TEST(Mailbox, ControlFramesAreIgnoredOnceClosed) {
  Mailbox mailbox{1, options(100, 1 << 20), nullptr};
  mailbox.close(close_reason::shutdown);
  mailbox.deliver_control(Event::control("gap", ""));
  EXPECT_EQ(mailbox.pending_events(), 0u);
}

TEST(MailboxNames, FramingAndOverflowPolicyParseTheirNamesAndRefuseOthers) {
  EXPECT_EQ(parse_framing("sse"), Framing::sse);
  EXPECT_EQ(parse_framing("websocket"), Framing::websocket);
  EXPECT_EQ(parse_overflow_policy("disconnect"), OverflowPolicy::disconnect);
  EXPECT_EQ(parse_overflow_policy("drop_oldest"), OverflowPolicy::drop_oldest);
  EXPECT_THROW((void)parse_framing("SSE"), InvalidArgument);
  EXPECT_THROW((void)parse_overflow_policy(""), InvalidArgument);
}

}  // namespace
}  // namespace sessionstream
