// RedisSource against a real server. Skipped unless SESSIONSTREAM_TEST_REDIS
// names one (host:port, as scripts/redis.sh address prints). Every test uses
// channels and a client name of its own, so tests never see each other.

#include <gtest/gtest.h>
#include <hiredis.h>

#include <cstdlib>
#include <random>
#include <set>
#include <sstream>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/core/notifier.hpp"
#include "sessionstream/sources/redis/source.hpp"
#include "sources/redis/connection.hpp"
#include "test_support.hpp"

namespace sessionstream::redis {
namespace {

using namespace std::chrono_literals;

std::string server() {
  const char* value = std::getenv("SESSIONSTREAM_TEST_REDIS");
  return value == nullptr ? std::string{} : std::string{value};
}

// WebSocket framing: no position frame ahead of the events (SSE gets one).
MailboxOptions ws() {
  MailboxOptions options;
  options.framing = Framing::websocket;
  return options;
}

std::string unique(std::string_view tag) {
  std::random_device rd;
  return std::string{tag} + std::to_string(rd() % 1'000'000'000);
}

TEST(RedisJson, StrictSyntax) {
  for (const auto* text :
       {"{}", "[]", "0", "-1.5e3", "\"x\"", " {\"a\":[1,true,null]} ", "\"\\u00e9\""}) {
    EXPECT_TRUE(is_json(text)) << text;
  }
  for (const auto* text :
       {"", "{", "{\"a\"}", "01", "1.", "[1,]", "nul", "'x'", "{} {}", "\"\\x\""}) {
    EXPECT_FALSE(is_json(text)) << text;
  }
  EXPECT_FALSE(is_json(std::string(200, '[') + std::string(200, ']')));
}

TEST(RedisChannelTemplate, RendersAndRefuses) {
  EXPECT_EQ(ChannelTemplate("{channel}").render("a:b"), "a:b");
  EXPECT_EQ(ChannelTemplate("redis.{channel}.x").render("c"), "redis.c.x");
  EXPECT_EQ(ChannelTemplate("{{{channel}}}").render("c"), "{c}");
  EXPECT_EQ(ChannelTemplate("fixed").render("c"), "fixed");
  EXPECT_THROW(ChannelTemplate("{topic}"), InvalidArgument);
  EXPECT_THROW(ChannelTemplate("{channel"), InvalidArgument);
  EXPECT_THROW(ChannelTemplate("a}b"), InvalidArgument);
}

TEST(RedisSourceConfigTest, RefusesBadSettings) {
  Hub hub;
  RedisSourceConfig config;
  EXPECT_THROW(RedisSource(hub, config), InvalidArgument);  // no patterns
  config.patterns = {""};
  EXPECT_THROW(RedisSource(hub, config), InvalidArgument);
  config.patterns = {"a"};
  config.channel = "{nope}";
  EXPECT_THROW(RedisSource(hub, config), InvalidArgument);
  config.channel = "{channel}";
  config.event_type = "bad type";
  EXPECT_THROW(RedisSource(hub, config), InvalidArgument);
  config.event_type = "message";
  config.client_name = "a b";
  EXPECT_THROW(RedisSource(hub, config), InvalidArgument);
  EXPECT_THROW((void)parse_payload_format("xml"), InvalidArgument);
}

TEST(RedisSourceUnreachable, StartsDegradedAndRetriesWithoutThrowing) {
  Hub hub;
  RedisSourceConfig config;
  config.endpoint = parse_url("redis://:hunter2@127.0.0.1:1/0");
  config.patterns = {"x"};
  RedisSource source(hub, config);
  EXPECT_NO_THROW(source.start());
  EXPECT_TRUE(source.running());
  EXPECT_FALSE(source.wait_connected(300ms));
  ASSERT_TRUE(test::eventually([&] { return source.health().errors >= 2; }, 3s));
  const auto h = source.health();
  EXPECT_EQ(h.status, "degraded");
  EXPECT_FALSE(h.connected);
  EXPECT_EQ(h.connections, 0u);
  EXPECT_NE(h.reason.find("127.0.0.1:1"), std::string::npos) << h.reason;
  EXPECT_NE(h.last_error.find("refused"), std::string::npos) << h.last_error;
  EXPECT_EQ(h.endpoint, "redis://:***@127.0.0.1:1/0");
  EXPECT_EQ(h.reason.find("hunter2"), std::string::npos);
  // The outage is noted once, however many attempts fail.
  const auto notes = source.take_log_notes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].kind, "connection.lost");
  const auto start = std::chrono::steady_clock::now();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(source.health().status, "stopped");
}

class RedisSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (server().empty()) GTEST_SKIP() << "SESSIONSTREAM_TEST_REDIS is not set";
    endpoint_ = parse_url("redis://" + server());
    admin_ = std::make_unique<Connection>(endpoint_, 2s, 2s);
    prefix_ = unique("rs");
  }

  RedisSourceConfig config(std::vector<std::string> patterns) {
    RedisSourceConfig c;
    c.endpoint = endpoint_;
    c.patterns = std::move(patterns);
    c.client_name = prefix_;
    return c;
  }

  long long publish(std::string_view channel, std::string_view payload) {
    const Reply reply = admin_->command({"PUBLISH", channel, payload});
    EXPECT_EQ(reply->type, REDIS_REPLY_INTEGER);
    return reply->integer;
  }

  long long numsub(std::string_view channel) {
    const Reply reply = admin_->command({"PUBSUB", "NUMSUB", channel});
    return reply->element[1]->integer;
  }

  // Redis's connections named after this test: what the source really holds.
  std::vector<std::string> client_ids() {
    const Reply reply = admin_->command({"CLIENT", "LIST", "TYPE", "pubsub"});
    std::istringstream lines(std::string(reply->str, reply->len));
    std::vector<std::string> ids;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(" name=" + prefix_ + " ") == std::string::npos) continue;
      const auto start = line.find("id=") + 3;
      ids.push_back(line.substr(start, line.find(' ', start) - start));
    }
    return ids;
  }

  static std::vector<EventPtr> take(Mailbox& mailbox, std::size_t count) {
    std::vector<EventPtr> events;
    (void)test::eventually(
        [&] {
          auto batch = mailbox.take_events(1 << 20);
          for (auto& e : batch.events) events.push_back(std::move(e));
          return events.size() >= count;
        },
        3s);
    return events;
  }

  Endpoint endpoint_;
  std::unique_ptr<Connection> admin_;
  std::string prefix_;
};

TEST_F(RedisSourceTest, PatternMessagesArriveOnTheTemplatedChannel) {
  Hub hub;
  auto cfg = config({prefix_ + ":*"});
  cfg.channel = "redis.{channel}";
  cfg.event_type = "tick";
  RedisSource source(hub, cfg);
  auto mailbox = hub.make_mailbox(ws(), std::make_shared<Notifier>());
  hub.subscribe(mailbox, {"redis." + prefix_ + ":a"});
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));

  EXPECT_EQ(publish(prefix_ + ":a", R"({"n":1})"), 1);
  EXPECT_EQ(publish(prefix_ + ":b", "elsewhere"), 1);
  EXPECT_EQ(publish(prefix_ + ":a", "plain text"), 1);
  const auto events = take(*mailbox, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]->channel(), "redis." + prefix_ + ":a");
  EXPECT_EQ(events[0]->type(), "tick");
  EXPECT_EQ(events[0]->data(), R"({"n":1})");
  EXPECT_TRUE(events[0]->data_is_json());
  EXPECT_EQ(events[1]->data(), "plain text");
  EXPECT_FALSE(events[1]->data_is_json());

  ASSERT_TRUE(test::eventually([&] { return source.health().published == 3; }));
  const auto h = source.health();
  EXPECT_EQ(h.status, "healthy");
  EXPECT_EQ(h.received, 3u);
  EXPECT_EQ(h.subscriptions, 1u);
  EXPECT_EQ(hub.subscriber_count("redis." + prefix_ + ":b"), 0u);
}

TEST_F(RedisSourceTest, PlainNamesSubscribeAndGlobsPatternSubscribe) {
  Hub hub;
  const std::string exact = prefix_ + ":exact";
  const std::string glob = prefix_ + ":g?";
  RedisSource source(hub, config({exact, glob}));
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));
  // SUBSCRIBE: Redis counts one subscriber of the exact name, and none of the
  // glob taken literally (it went to PSUBSCRIBE).
  EXPECT_EQ(numsub(exact), 1);
  EXPECT_EQ(numsub(glob), 0);
  EXPECT_EQ(publish(prefix_ + ":g1", "via pattern"), 1);
  EXPECT_EQ(publish(prefix_ + ":gxx", "no match"), 0);
  EXPECT_EQ(publish(exact, "via channel"), 1);
  ASSERT_TRUE(test::eventually([&] { return source.health().published == 2; }));
  EXPECT_EQ(source.health().subscriptions, 2u);
}

TEST_F(RedisSourceTest, OneConnectionHowManySubscribersSoEver) {
  Hub hub;
  const std::string channel = prefix_ + ":fan";
  RedisSource source(hub, config({channel}));
  std::vector<MailboxPtr> subscribers;
  for (int i = 0; i < 50; ++i) {
    subscribers.push_back(hub.make_mailbox(ws(), std::make_shared<Notifier>()));
    hub.subscribe(subscribers.back(), {channel});
  }
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));
  EXPECT_EQ(client_ids().size(), 1u);
  EXPECT_EQ(numsub(channel), 1);
  // PUBLISH answers how many connections received the message.
  EXPECT_EQ(publish(channel, "to everyone"), 1);
  EventPtr first;
  for (const auto& s : subscribers) {
    const auto events = take(*s, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]->data(), "to everyone");
    // One shared event object, not a copy per mailbox.
    if (!first) first = events[0];
    EXPECT_EQ(events[0].get(), first.get());
  }
  EXPECT_EQ(source.health().connections, 1u);
  EXPECT_EQ(source.health().published, 1u);
}

TEST_F(RedisSourceTest, BadInputIsCountedPerKindNotedOnceAndSkipped) {
  HubConfig hub_config;
  hub_config.max_event_bytes = 64;
  hub_config.max_channel_name = 40;
  Hub hub(hub_config);
  auto cfg = config({prefix_ + ":*"});
  cfg.payload = PayloadFormat::json;
  RedisSource source(hub, cfg);
  const std::string good = prefix_ + ":good";
  auto mailbox = hub.make_mailbox(ws(), std::make_shared<Notifier>());
  hub.subscribe(mailbox, {good});
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));

  for (int round = 0; round < 2; ++round) {
    publish(prefix_ + ":" + std::string(60, 'x'), "1");  // channel too long
    publish(prefix_ + ":a b", "1");                      // space
    publish(prefix_ + ":\xff\n", "1");                   // not UTF-8, a control character
    publish(good, "\"" + std::string(80, 'y') + "\"");   // payload too large
    publish(good, "\"\xff\"");                           // JSON-shaped, not UTF-8
    publish(good, "not json");
    publish(good, std::to_string(round));
  }
  const auto events = take(*mailbox, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]->data(), "0");
  EXPECT_EQ(events[1]->data(), "1");

  ASSERT_TRUE(test::eventually([&] { return source.health().received == 14; }));
  const auto h = source.health();
  EXPECT_EQ(h.published, 2u);
  EXPECT_EQ(h.skipped[static_cast<std::size_t>(SkipKind::invalid_channel)], 6u);
  EXPECT_EQ(h.skipped[static_cast<std::size_t>(SkipKind::too_large)], 2u);
  EXPECT_EQ(h.skipped[static_cast<std::size_t>(SkipKind::invalid_utf8)], 2u);
  EXPECT_EQ(h.skipped[static_cast<std::size_t>(SkipKind::bad_json)], 2u);
  EXPECT_EQ(h.status, "healthy");

  std::multiset<std::string> kinds;
  for (const auto& note : source.take_log_notes()) {
    kinds.insert(note.kind);
    EXPECT_EQ(note.level, "warning");
    EXPECT_NE(note.message.find(prefix_), std::string::npos) << note.message;
    EXPECT_TRUE(is_valid_utf8(note.message)) << note.message;
    EXPECT_EQ(note.message.find('\n'), std::string::npos) << note.message;
  }
  EXPECT_EQ(kinds, (std::multiset<std::string>{"skip.bad_json", "skip.invalid_channel",
                                               "skip.invalid_utf8", "skip.too_large"}));
}

TEST_F(RedisSourceTest, ReconnectsAfterItsConnectionIsKilled) {
  Hub hub;
  const std::string channel = prefix_ + ":again";
  RedisSource source(hub, config({channel}));
  auto mailbox = hub.make_mailbox(ws(), std::make_shared<Notifier>());
  hub.subscribe(mailbox, {channel});
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));
  EXPECT_EQ(publish(channel, "before"), 1);
  ASSERT_EQ(take(*mailbox, 1).size(), 1u);

  const auto ids = client_ids();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(admin_->command({"CLIENT", "KILL", "ID", ids[0]})->integer, 1);
  ASSERT_TRUE(test::eventually(
      [&] {
        const auto h = source.health();
        return h.reconnects == 1 && h.connected;
      },
      5s));
  const auto after = client_ids();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], ids[0]);
  EXPECT_EQ(publish(channel, "after"), 1);
  const auto events = take(*mailbox, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->data(), "after");
  const auto h = source.health();
  EXPECT_EQ(h.errors, 1u);
  EXPECT_NE(h.last_error.find("closed"), std::string::npos) << h.last_error;
  std::set<std::string> kinds;
  for (const auto& note : source.take_log_notes()) kinds.insert(note.kind);
  EXPECT_EQ(kinds, (std::set<std::string>{"connection.lost", "connection.restored"}));
}

TEST_F(RedisSourceTest, StopIsPromptAndLeavesNoConnection) {
  Hub hub;
  RedisSource source(hub, config({prefix_ + ":stop"}));
  source.start();
  source.start();  // idempotent
  ASSERT_TRUE(source.wait_connected(5s));
  const auto start = std::chrono::steady_clock::now();
  source.stop();
  source.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_FALSE(source.running());
  EXPECT_EQ(source.health().status, "stopped");
  EXPECT_TRUE(test::eventually([&] { return client_ids().empty(); }));
  // Restartable.
  source.start();
  EXPECT_TRUE(source.wait_connected(5s));
}

TEST_F(RedisSourceTest, AClosedHubEndsTheReaderQuietly) {
  Hub hub;
  const std::string channel = prefix_ + ":closed";
  RedisSource source(hub, config({channel}));
  source.start();
  ASSERT_TRUE(source.wait_connected(5s));
  hub.close();
  publish(channel, "into a closed hub");
  ASSERT_TRUE(test::eventually([&] { return source.health().status == "stopped"; }));
  EXPECT_EQ(source.health().errors, 0u);
  source.stop();
}

}  // namespace
}  // namespace sessionstream::redis
