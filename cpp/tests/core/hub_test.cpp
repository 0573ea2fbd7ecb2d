#include "sessionstream/core/hub.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using test::drain_sse;
using test::event_seqs;
using test::parse_sse;
using test::parse_sse_stream;

HubConfig config_with_epoch(std::uint64_t epoch = 0xe1) {
  HubConfig config;
  config.epoch = epoch;
  return config;
}

MailboxOptions roomy() {
  return MailboxOptions{Framing::sse, OverflowPolicy::disconnect, {}};
}

// A live SSE subscribe whose position frame (the head id, nothing dispatched)
// is taken and checked, so the mailbox then holds only what comes after.
void subscribe_live(Hub& hub, const MailboxPtr& mailbox, const std::vector<std::string>& channels) {
  const std::string head = hub.head_id();
  EXPECT_EQ(hub.subscribe(mailbox, channels), ResumeOutcome::live);
  const auto batch = mailbox->take(1 << 20);
  EXPECT_EQ(batch.data, "id: " + head + "\n\n") << "expected only the position frame";
}

// Expects fn to throw E whose message contains every fragment.
template <typename E, typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string_view> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& error) {
    const std::string message = error.what();
    for (const auto fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "'" << message << "' does not mention '" << fragment << "'";
    }
  } catch (const std::exception& error) {
    ADD_FAILURE() << "wrong exception type: " << error.what();
  }
}

TEST(Hub, PublishAssignsIncreasingIdsInTheHubEpoch) {
  Hub hub{config_with_epoch(0xabc)};
  EXPECT_EQ(hub.epoch(), 0xabcu);
  EXPECT_EQ(hub.head_id(), "abc-0");
  const auto a = hub.publish("a", "1", "t", false);
  const auto b = hub.publish("b", "2", "t", false);
  const auto c = hub.publish("a", "3", "t", false);
  EXPECT_EQ(a->id(), (EventId{0xabc, 1}));
  EXPECT_EQ(b->id(), (EventId{0xabc, 2}));
  EXPECT_EQ(c->id(), (EventId{0xabc, 3}));
  EXPECT_EQ(c->id_text(), "abc-3");
  EXPECT_EQ(hub.head_id(), "abc-3");
  EXPECT_EQ(a->channel(), "a");
  EXPECT_EQ(Metrics::read(hub.metrics().published), 3u);
}

TEST(Hub, FreshEpochIsDerivedFromTheClock) {
  const auto before =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  Hub hub;
  EXPECT_NE(hub.epoch(), 0u);
  EXPECT_GE(hub.epoch() >> 12, before) << "a restart must get a larger epoch";
}

TEST(Hub, EmptyTypeBecomesMessage) {
  Hub hub{config_with_epoch()};
  const auto event = hub.publish("a", "x", "", false);
  EXPECT_EQ(event->type(), "message");
}

TEST(Hub, InvalidChannelNamesAreRejectedByName) {
  Hub hub{config_with_epoch()};
  for (const std::string bad :
       {std::string{"has space"}, std::string{"tab\there"}, std::string{"del\x7f"},
        std::string{"caf\xc3\xa9"}, std::string{"new\nline"}}) {
    expect_error<InvalidArgument>([&] { hub.publish(bad, "x", "t", false); },
                                  {bad.substr(0, 3), "channel name"});
  }
  expect_error<InvalidArgument>([&] { hub.publish("", "x", "t", false); }, {"channel name ''"});
  expect_error<InvalidArgument>([&] { hub.publish(std::string(257, 'a'), "x", "t", false); },
                                {"1-256"});
  EXPECT_NO_THROW(hub.publish(std::string(256, 'a'), "x", "t", false));
  EXPECT_NO_THROW(hub.publish("crawl:42:progress", "x", "t", false));

  auto mailbox = hub.make_mailbox(roomy(), nullptr);
  expect_error<InvalidArgument>([&] { hub.subscribe(mailbox, {"ok", "not ok"}); }, {"not ok"});
  EXPECT_TRUE(hub.channels_of(*mailbox).empty()) << "a rejected subscribe attached something";
}

TEST(Hub, InvalidEventTypesAreRejectedByName) {
  Hub hub{config_with_epoch()};
  for (const std::string bad : {std::string{"with space"}, std::string{"new\nline"},
                                std::string(65, 't'), std::string{"nul\0x", 5}}) {
    expect_error<InvalidArgument>([&] { hub.publish("a", "x", bad, false); },
                                  {bad.substr(0, 3), "event type"});
  }
  EXPECT_NO_THROW(hub.publish("a", "x", std::string(64, 't'), false));
}

TEST(Hub, OversizePayloadIsRejectedWithoutConsumingAnId) {
  HubConfig config = config_with_epoch();
  config.max_event_bytes = 16;
  Hub hub{config};
  const auto first = hub.publish("a", std::string(16, 'x'), "t", false);
  expect_error<PayloadTooLarge>([&] { hub.publish("a", std::string(17, 'x'), "t", false); },
                                {"17", "16", "max_event_bytes"});
  const auto next = hub.publish("a", "y", "t", false);
  EXPECT_EQ(next->id().seq, first->id().seq + 1) << "a rejected publish left a hole in the ids";
}

TEST(Hub, DataThatIsNotUtf8IsRejectedWithItsOffset) {
  Hub hub{config_with_epoch()};
  auto sse = hub.make_mailbox(roomy(), nullptr);
  auto ws = hub.make_mailbox({Framing::websocket, OverflowPolicy::disconnect, {}}, nullptr);
  subscribe_live(hub, sse, {"a"});
  hub.subscribe(ws, {"a"});
  const auto first = hub.publish("a", "ok", "t", false);
  struct Case {
    std::string data;
    bool json;
    std::size_t offset;
  };
  const std::vector<Case> cases = {
      {"\xff", false, 0},
      {"caf\xc3\xa9 \xc3", false, 6},                  // cut short at the end
      {"\xed\xa0\x80", false, 0},                      // a surrogate
      {"{\"k\":\"\xc0\x80\"}", true, 6},               // overlong, inside JSON
      {std::string(5000, 'x') + "\x80", false, 5000},  // past the ASCII fast path
  };
  for (const auto& c : cases) {
    try {
      hub.publish("a", c.data, "t", c.json);
      ADD_FAILURE() << "accepted " << testing::PrintToString(c.data.substr(0, 20));
    } catch (const InvalidUtf8& e) {
      EXPECT_EQ(e.field(), "data");
      EXPECT_EQ(e.offset(), c.offset);
      const std::string message = e.what();
      EXPECT_NE(message.find("event data is not valid UTF-8"), std::string::npos) << message;
      EXPECT_NE(message.find("byte offset " + std::to_string(c.offset)), std::string::npos)
          << message;
      EXPECT_TRUE(is_valid_utf8(message)) << "the message itself must be text";
    }
  }
  // Nothing was queued, stored or numbered for the refused events.
  const auto next = hub.publish("a", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "t", false);
  EXPECT_EQ(next->id().seq, first->id().seq + 1);
  EXPECT_EQ(event_seqs(drain_sse(*sse)),
            (std::vector<std::uint64_t>{first->id().seq, next->id().seq}));
  const auto batch = ws->take(1 << 20);
  EXPECT_TRUE(is_valid_utf8(batch.data));
  EXPECT_TRUE(test::is_valid_json(batch.data)) << batch.data;
  EXPECT_NE(batch.data.find("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);
  const auto resumed = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(resumed, {"a"}, EventId{hub.epoch(), 0}.to_string()),
            ResumeOutcome::exact);
  EXPECT_EQ(event_seqs(drain_sse(*resumed)),
            (std::vector<std::uint64_t>{first->id().seq, next->id().seq}));
  EXPECT_EQ(Metrics::read(hub.metrics().published), 2u);
}

TEST(Hub, EventTypeThatIsNotUtf8IsRejected) {
  Hub hub{config_with_epoch()};
  try {
    hub.publish("a", "x", "caf\xc3", false);
    ADD_FAILURE() << "accepted";
  } catch (const InvalidUtf8& e) {
    EXPECT_EQ(e.field(), "event");
    EXPECT_EQ(e.offset(), 3u);
    EXPECT_NE(std::string{e.what()}.find("event type is not valid UTF-8"), std::string::npos);
  }
  EXPECT_NO_THROW(hub.publish("a", "x", "caf\xc3\xa9", false));
}

TEST(Hub, ErrorMessagesQuoteInputOnCharacterBoundaries) {
  Hub hub{config_with_epoch()};
  // 79 ASCII characters and a two-byte one: a byte cut at 80 would split it.
  const std::string channel = std::string(79, 'c') + "\xc3\xa9";
  try {
    hub.publish(channel, "x", "t", false);
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_TRUE(is_valid_utf8(message)) << message;
    EXPECT_NE(message.find("channel name '" + std::string(79, 'c') + "'"), std::string::npos)
        << message;
  }
  // Bytes that are not UTF-8 are quoted as U+FFFD.
  try {
    hub.publish("bad\xff", "x", "t", false);
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string{e.what()}.find("'bad\xef\xbf\xbd'"), std::string::npos) << e.what();
  }
  try {
    hub.publish("a", "x", std::string(79, 't') + "\xe2\x82\xac", false);
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_TRUE(is_valid_utf8(message)) << message;
    EXPECT_NE(message.find("event type '" + std::string(79, 't') + "'"), std::string::npos);
  }
}

TEST(Hub, ZeroCapacitiesAreRejected) {
  HubConfig no_history = config_with_epoch();
  no_history.history.max_events = 0;
  EXPECT_THROW(Hub{no_history}, InvalidArgument);
  HubConfig no_age = config_with_epoch();
  no_age.history.max_age = 0ms;
  EXPECT_THROW(Hub{no_age}, InvalidArgument);
  HubConfig no_payload = config_with_epoch();
  no_payload.max_event_bytes = 0;
  EXPECT_THROW(Hub{no_payload}, InvalidArgument);

  Hub hub{config_with_epoch()};
  EXPECT_THROW(
      (void)hub.make_mailbox({Framing::sse, OverflowPolicy::disconnect, {0, 1024}}, nullptr),
      InvalidArgument);
  EXPECT_THROW((void)hub.make_mailbox({Framing::sse, OverflowPolicy::disconnect, {16, 0}}, nullptr),
               InvalidArgument);
}

TEST(Hub, MailboxsGetDistinctIds) {
  Hub hub{config_with_epoch()};
  const auto a = hub.make_mailbox(roomy(), nullptr);
  const auto b = hub.make_mailbox(roomy(), nullptr);
  EXPECT_NE(a->id(), b->id());
  EXPECT_NE(a->id(), 0u) << "0 is the lifecycle queue's notifier token";
}

TEST(Hub, FanOutSharesOneEventWithEveryReceiver) {
  Hub hub{config_with_epoch()};
  constexpr int kReceivers = 5;
  std::vector<MailboxPtr> receivers;
  for (int i = 0; i < kReceivers; ++i) {
    receivers.push_back(hub.make_mailbox(roomy(), nullptr));
    subscribe_live(hub, receivers.back(), {"news"});
  }
  const auto bystander = hub.make_mailbox(roomy(), nullptr);
  subscribe_live(hub, bystander, {"sport"});

  const auto event = hub.publish("news", std::string(1000, 'p'), "t", false);
  // One reference here, one in the history ring, one per mailbox: every
  // receiver holds the very same Event, so no payload was copied for it.
  EXPECT_EQ(event.use_count(), 2 + kReceivers);
  EXPECT_EQ(bystander->pending_events(), 0u);
  EXPECT_EQ(Metrics::read(hub.metrics().delivered), static_cast<std::uint64_t>(kReceivers));

  const char* const frame = event->sse_frame().data();
  for (const auto& receiver : receivers) {
    const auto batch = receiver->take(1 << 20);
    EXPECT_EQ(batch.data, event->sse_frame());
  }
  EXPECT_EQ(event->sse_frame().data(), frame) << "the frame was rebuilt for a receiver";
  EXPECT_EQ(event.use_count(), 2);
}

TEST(Hub, LiveSseSubscribeStartsWithAPositionFrameAtTheHead) {
  Hub hub{config_with_epoch()};
  hub.publish("a", "1", "t", false);
  hub.publish("b", "2", "t", false);
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}), ResumeOutcome::live);
  // Pending like any frame, but it costs no bytes.
  EXPECT_EQ(mailbox->pending_events(), 1u);
  EXPECT_EQ(mailbox->pending_bytes(), 0u);

  const auto position = mailbox->take(1 << 20);
  EXPECT_EQ(position.events, 1u);
  EXPECT_EQ(position.data, "id: e1-2\n\n");
  const auto stream = parse_sse_stream(position.data);
  EXPECT_TRUE(stream.messages.empty()) << "the position frame dispatched a message";
  EXPECT_EQ(stream.last_event_id, "e1-2");

  hub.publish("a", "3", "t", false);
  const auto live = parse_sse_stream(mailbox->take(1 << 20).data, stream.last_event_id);
  EXPECT_EQ(event_seqs(live.messages), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(live.last_event_id, "e1-3");
}

TEST(Hub, PositionFrameIsSentOnlyBeforeTheFirstAttachment) {
  Hub hub{config_with_epoch()};
  hub.publish("a", "1", "t", false);
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  hub.subscribe(mailbox, {"a"});
  hub.publish("a", "2", "t", false);
  // Adding channels live: the client already has its position and events.
  hub.subscribe(mailbox, {"b"});
  const auto stream = test::drain_sse_stream(*mailbox);
  EXPECT_EQ(event_seqs(stream.messages), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(stream.last_event_id, "e1-2");
  EXPECT_EQ(mailbox->pending_events(), 0u);

  // A resume names its own position: no position frame either.
  const auto resumed = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(resumed, {"a"}, hub.head_id()), ResumeOutcome::exact);
  EXPECT_EQ(resumed->pending_events(), 0u);
}

TEST(Hub, WebSocketSubscribersGetNoPositionFrame) {
  Hub hub{config_with_epoch()};
  hub.publish("a", "1", "t", false);
  const auto mailbox =
      hub.make_mailbox({Framing::websocket, OverflowPolicy::disconnect, {}}, nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}), ResumeOutcome::live);
  EXPECT_EQ(mailbox->pending_events(), 0u);
  const auto event = hub.publish("a", "2", "t", false);
  EXPECT_EQ(mailbox->take(1 << 20).data, "[" + event->ws_object() + "]");
}

TEST(Hub, UnsubscribeAndDetach) {
  Hub hub{config_with_epoch()};
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a", "b", "a"}), ResumeOutcome::live);
  EXPECT_EQ(hub.subscriber_count("a"), 1u) << "a repeated channel attached twice";
  EXPECT_EQ(hub.channels_of(*mailbox), (std::vector<std::string>{"a", "b"}));

  hub.unsubscribe(mailbox, "a");
  hub.unsubscribe(mailbox, "never-joined");
  EXPECT_EQ(hub.subscriber_count("a"), 0u);
  EXPECT_EQ(hub.channels_of(*mailbox), (std::vector<std::string>{"b"}));
  hub.publish("a", "1", "t", false);
  hub.publish("b", "2", "t", false);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{2}));

  hub.detach(mailbox);
  hub.detach(mailbox);
  EXPECT_EQ(hub.subscriber_count("b"), 0u);
  EXPECT_TRUE(hub.channels_of(*mailbox).empty());
  hub.publish("b", "3", "t", false);
  EXPECT_EQ(mailbox->pending_events(), 0u);
}

TEST(Hub, MailboxCountFollowsJoinsAndLeaves) {
  Hub hub{config_with_epoch()};
  std::vector<MailboxPtr> subscribers;
  for (int i = 0; i < 4; ++i) {
    subscribers.push_back(hub.make_mailbox(roomy(), nullptr));
    subscribe_live(hub, subscribers.back(), {"room"});
  }
  EXPECT_EQ(hub.subscriber_count("room"), 4u);
  hub.unsubscribe(subscribers[1], "room");
  hub.detach(subscribers[3]);
  EXPECT_EQ(hub.subscriber_count("room"), 2u);
  hub.publish("room", "x", "t", false);
  EXPECT_EQ(subscribers[0]->pending_events(), 1u);
  EXPECT_EQ(subscribers[1]->pending_events(), 0u);
  EXPECT_EQ(subscribers[2]->pending_events(), 1u);
  EXPECT_EQ(subscribers[3]->pending_events(), 0u);
  hub.detach(subscribers[0]);
  hub.detach(subscribers[2]);
  EXPECT_EQ(hub.subscriber_count("room"), 0u);
  EXPECT_EQ(hub.subscriber_count("unknown"), 0u);
}

TEST(Hub, SlowConsumerIsDetachedAndReported) {
  Hub hub{config_with_epoch()};
  const auto slow =
      hub.make_mailbox({Framing::sse, OverflowPolicy::disconnect, {2, 1 << 20}}, nullptr);
  const auto fast = hub.make_mailbox(roomy(), nullptr);
  // The slow one keeps its position frame pending: a control frame, it does
  // not count against the bound of 2, so the third event is the overflow.
  hub.subscribe(slow, {"a", "b"});
  EXPECT_EQ(slow->pending_events(), 1u);
  subscribe_live(hub, fast, {"a"});
  for (int i = 0; i < 2; ++i) hub.publish("a", "x", "t", false);
  EXPECT_FALSE(slow->closed());
  hub.publish("a", "x", "t", false);

  EXPECT_TRUE(slow->closed());
  EXPECT_EQ(hub.subscriber_count("a"), 1u);
  EXPECT_EQ(hub.subscriber_count("b"), 0u) << "the slow consumer stayed on its other channel";
  EXPECT_EQ(Metrics::read(hub.metrics().slow_consumer_disconnects), 1u);
  const auto events = hub.lifecycle()->take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, LifecycleKind::slow_consumer);
  EXPECT_EQ(events[0].connection_id, slow->id());
  EXPECT_EQ(fast->pending_events(), 3u);
}

TEST(Hub, DropOldestIsCountedAsDropped) {
  Hub hub{config_with_epoch()};
  const auto mailbox =
      hub.make_mailbox({Framing::sse, OverflowPolicy::drop_oldest, {2, 1 << 20}}, nullptr);
  hub.subscribe(mailbox, {"a"});
  for (int i = 0; i < 5; ++i) hub.publish("a", "x", "t", false);
  EXPECT_FALSE(mailbox->closed());
  EXPECT_EQ(Metrics::read(hub.metrics().dropped), 3u);
  EXPECT_EQ(hub.subscriber_count("a"), 1u);
}

TEST(Hub, HistoryIsBoundedByCount) {
  HubConfig config = config_with_epoch(5);
  config.history.max_events = 3;
  Hub hub{config};
  for (int i = 0; i < 6; ++i) hub.publish("a", std::to_string(i), "t", false);
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, "5-0"), ResumeOutcome::gap);
  EXPECT_EQ(event_seqs(drain_sse(*mailbox)), (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST(Hub, HistoryIsBoundedByAge) {
  HubConfig config = config_with_epoch(5);
  config.history.max_age = 30ms;
  Hub hub{config};
  hub.publish("a", "old", "t", false);
  std::this_thread::sleep_for(80ms);
  hub.publish("a", "new", "t", false);  // trims what aged out
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  EXPECT_EQ(hub.subscribe(mailbox, {"a"}, "5-0"), ResumeOutcome::gap);
  const auto messages = drain_sse(*mailbox);
  EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(messages.front().event, "gap");
}

TEST(Hub, SweepRemovesIdleChannelsOnly) {
  HubConfig config = config_with_epoch();
  config.history.max_age = 30ms;
  Hub hub{config};
  const auto mailbox = hub.make_mailbox(roomy(), nullptr);
  subscribe_live(hub, mailbox, {"busy"});
  hub.publish("idle", "x", "t", false);
  hub.publish("busy", "x", "t", false);
  EXPECT_EQ(hub.sweep(), 0u) << "history still young";
  EXPECT_EQ(hub.channel_count(), 2u);

  std::this_thread::sleep_for(80ms);
  hub.publish("fresh", "x", "t", false);
  EXPECT_EQ(hub.sweep(), 1u);
  EXPECT_EQ(hub.channel_count(), 2u);  // busy (has a mailbox) and fresh (young history)
  EXPECT_EQ(hub.subscriber_count("busy"), 1u);
  hub.publish("busy", "y", "t", false);
  EXPECT_EQ(mailbox->pending_events(), 2u);

  hub.detach(mailbox);
  std::this_thread::sleep_for(80ms);
  EXPECT_EQ(hub.sweep(), 2u);
  EXPECT_EQ(hub.channel_count(), 0u);
}

TEST(Hub, CloseShutsEveryMailboxAndRefusesMore) {
  auto notifier = std::make_shared<Notifier>();
  Hub hub{config_with_epoch()};
  const auto a = hub.make_mailbox(roomy(), notifier);
  const auto b = hub.make_mailbox(roomy(), notifier);
  hub.subscribe(a, {"x"});
  hub.subscribe(b, {"x", "y"});
  hub.publish("x", "before", "t", false);

  hub.close();
  hub.close();
  EXPECT_TRUE(hub.is_closed());
  EXPECT_EQ(hub.subscriber_count("x"), 0u);
  EXPECT_EQ(hub.subscriber_count("y"), 0u);
  for (const auto& mailbox : {a, b}) {
    bool closed = false;
    std::string reason;
    const auto messages = drain_sse(*mailbox, &closed, &reason);
    EXPECT_EQ(event_seqs(messages), (std::vector<std::uint64_t>{1})) << "pending frames lost";
    EXPECT_TRUE(closed);
    EXPECT_EQ(reason, close_reason::shutdown);
  }
  expect_error<Closed>([&] { hub.publish("x", "after", "t", false); }, {"closed"});
  const auto late = hub.make_mailbox(roomy(), nullptr);
  EXPECT_THROW(hub.subscribe(late, {"x"}), Closed);
}

}  // namespace
}  // namespace sessionstream
