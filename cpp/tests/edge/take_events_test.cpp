#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "sessionstream/core/mailbox.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::make_event;

MailboxOptions options(std::size_t max_events, OverflowPolicy overflow,
                       Framing framing = Framing::sse) {
  return MailboxOptions{framing, overflow, MailboxLimits{max_events, 1 << 20}};
}

TEST(MailboxTakeEvents, ReturnsTheSharedEventsThemselves) {
  Mailbox mailbox{1, options(16, OverflowPolicy::disconnect), nullptr};
  const auto first = make_event(1, "a");
  const auto second = make_event(2, "b");
  mailbox.deliver(first);
  mailbox.deliver(second);
  const auto batch = mailbox.take_events(1 << 20);
  ASSERT_EQ(batch.events.size(), 2u);
  EXPECT_EQ(batch.events[0], first);
  EXPECT_EQ(batch.events[1], second);
  EXPECT_FALSE(batch.closed);
  EXPECT_EQ(mailbox.pending_events(), 0u);
  EXPECT_EQ(mailbox.pending_bytes(), 0u);
}

TEST(MailboxTakeEvents, HonoursTheByteBudgetAndTakesAtLeastOne) {
  Mailbox mailbox{1, options(16, OverflowPolicy::disconnect), nullptr};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq, "0123456789"));
  EXPECT_EQ(mailbox.take_events(1).events.size(), 1u);
  // 74 budget bytes per event: two reach 148 >= 100.
  EXPECT_EQ(mailbox.take_events(100).events.size(), 2u);
  EXPECT_EQ(mailbox.take_events(1 << 20).events.size(), 2u);
  EXPECT_TRUE(mailbox.take_events(1 << 20).events.empty());
}

TEST(MailboxTakeEvents, RemarksTheNotifierWhileEventsRemain) {
  const auto notifier = std::make_shared<Notifier>();
  Mailbox mailbox{7, options(16, OverflowPolicy::disconnect), notifier};
  for (std::uint64_t seq = 1; seq <= 3; ++seq) mailbox.deliver(make_event(seq));
  EXPECT_EQ(notifier->take_ready(), std::vector<std::uint64_t>{7});
  (void)mailbox.take_events(1);
  EXPECT_EQ(notifier->take_ready(), std::vector<std::uint64_t>{7});
  (void)mailbox.take_events(1 << 20);
  EXPECT_TRUE(notifier->take_ready().empty());
  mailbox.deliver(make_event(4));
  EXPECT_EQ(notifier->take_ready(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(mailbox.notifier(), notifier);
}

TEST(MailboxTakeEvents, GapEventComesFirstAfterDropOldest) {
  Mailbox mailbox{1, options(2, OverflowPolicy::drop_oldest), nullptr};
  for (std::uint64_t seq = 1; seq <= 5; ++seq) mailbox.deliver(make_event(seq));
  const auto batch = mailbox.take_events(1 << 20);
  ASSERT_EQ(batch.events.size(), 3u);
  EXPECT_TRUE(batch.events[0]->is_control());
  EXPECT_EQ(batch.events[0]->type(), "gap");
  EXPECT_EQ(batch.events[0]->ws_object(),
            "{\"type\":\"gap\",\"reason\":\"dropped_oldest\",\"missed\":3}");
  EXPECT_EQ(batch.events[1]->id().seq, 4u);
  EXPECT_EQ(batch.events[2]->id().seq, 5u);
  // Reported once.
  mailbox.deliver(make_event(6));
  const auto next = mailbox.take_events(1 << 20);
  ASSERT_EQ(next.events.size(), 1u);
  EXPECT_FALSE(next.events[0]->is_control());
}

TEST(MailboxTakeEvents, ClosedOnlyOnceDrained) {
  Mailbox mailbox{1, options(16, OverflowPolicy::disconnect), nullptr};
  mailbox.deliver(make_event(1));
  mailbox.deliver(make_event(2));
  mailbox.close(close_reason::shutdown);
  const auto first = mailbox.take_events(1);
  EXPECT_EQ(first.events.size(), 1u);
  EXPECT_FALSE(first.closed);
  const auto last = mailbox.take_events(1);
  EXPECT_EQ(last.events.size(), 1u);
  EXPECT_TRUE(last.closed);
  EXPECT_EQ(last.close_reason, close_reason::shutdown);
  const auto after = mailbox.take_events(1);
  EXPECT_TRUE(after.events.empty());
  EXPECT_TRUE(after.closed);
}

TEST(MailboxTakeEvents, TakeFramesTheSameEvents) {
  Mailbox events{1, options(2, OverflowPolicy::drop_oldest, Framing::websocket), nullptr};
  Mailbox frames{2, options(2, OverflowPolicy::drop_oldest, Framing::websocket), nullptr};
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    const auto event = make_event(seq, "{\"n\":1}", "c", "message", true);
    events.deliver(event);
    frames.deliver(event);
  }
  const auto batch = events.take_events(1 << 20);
  std::string joined = "[";
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    if (i > 0) joined += ",";
    joined += batch.events[i]->ws_object();
  }
  joined += "]";
  const auto framed = frames.take(1 << 20);
  EXPECT_EQ(framed.data, joined);
  EXPECT_EQ(framed.events, 2u) << "take() counts the mailbox's events, not the gap";
  EXPECT_TRUE(test::is_valid_json(framed.data));
}

}  // namespace
}  // namespace sessionstream
