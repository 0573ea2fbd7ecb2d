// Regression tests: lifecycle notification on attach, JSON data checks and the
// per-mailbox channel cap.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/json_check.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/core/lifecycle.hpp"
#include "sessionstream/core/notifier.hpp"

namespace sessionstream {
namespace {

LifecycleEvent connected(std::uint64_t id) {
  return {LifecycleKind::connected, id, "s", 0, {}};
}

TEST(LifecycleQueue, NotifierAttachedAfterPushesIsSignalledAtOnce) {
  LifecycleQueue queue;
  queue.push(connected(1));
  queue.push(connected(2));
  const auto notifier = std::make_shared<Notifier>();
  queue.set_notifier(notifier);
  EXPECT_EQ(notifier->take_ready(), std::vector<std::uint64_t>{LifecycleQueue::kNotifyToken});
  EXPECT_EQ(queue.take().size(), 2u);
}

TEST(LifecycleQueue, NotifierAttachedToEmptyQueueStaysQuiet) {
  LifecycleQueue queue;
  const auto notifier = std::make_shared<Notifier>();
  queue.set_notifier(notifier);
  EXPECT_TRUE(notifier->take_ready().empty());
  queue.push(connected(1));
  EXPECT_EQ(notifier->take_ready().size(), 1u);
}

TEST(JsonCheck, AcceptsValidDocuments) {
  for (const std::string text :
       {"{}", "[]", "0", "-0", "-1.5e3", "1E+2", "\"x\"", " {\"a\":[1,true,null,false]} \n",
        "\"\\u00e9\\n\\\"\\/\"", "\"\\ud800\"", "\"\\udc00\\ud800\"", "{\"a\":{\"b\":{}}}",
        "\"\xc3\xa9\""}) {
    EXPECT_FALSE(find_json_error(text)) << text << ": " << find_json_error(text).what;
  }
  const std::string deep = std::string(kJsonMaxDepth, '[') + std::string(kJsonMaxDepth, ']');
  EXPECT_TRUE(is_valid_json(deep));
}

TEST(JsonCheck, RefusesInvalidDocumentsWithOffset) {
  struct Case {
    std::string text;
    std::size_t offset;
  };
  for (const auto& [text, offset] : std::vector<Case>{
           {"", 0},      {"   ", 3},    {"{", 1},       {"{\"a\"}", 4},     {"{\"a\":1,}", 7},
           {"[1,]", 3},  {"[1 2]", 3},  {"01", 1},      {"1.", 2},          {"1e", 2},
           {"-", 1},     {"nul", 0},    {"'x'", 0},     {"{} {}", 3},       {"{\"a\":1} x", 8},
           {"\"abc", 0}, {"[\"abc", 1}, {"\"\\x\"", 2}, {"\"\\u12g4\"", 5}, {"\"a\tb\"", 2},
           {"{1:2}", 1}, {"[1", 2},
       }) {
    const JsonError error = find_json_error(text);
    ASSERT_TRUE(error) << "accepted: " << text;
    EXPECT_EQ(error.offset, offset) << text << ": " << error.what;
  }
}

TEST(JsonCheck, NestingBeyondTheLimitIsRefusedWithoutRecursingFurther) {
  const std::string too_deep =
      std::string(kJsonMaxDepth + 1, '[') + std::string(kJsonMaxDepth + 1, ']');
  const JsonError error = find_json_error(too_deep);
  ASSERT_TRUE(error);
  EXPECT_EQ(error.offset, kJsonMaxDepth);
  // Far deeper than any stack could recurse: refused, not crashed.
  EXPECT_FALSE(is_valid_json(std::string(1'000'000, '[')));
  EXPECT_FALSE(is_valid_json("[[[]]]", 2));
  EXPECT_TRUE(is_valid_json("[[]]", 2));
}

TEST(HubJson, PublishRefusesDataMarkedJsonThatIsNot) {
  HubConfig config;
  config.epoch = 0xe1;
  Hub hub(config);
  EXPECT_NO_THROW(hub.publish("a", "{\"ok\":true}", "m", true));
  EXPECT_NO_THROW(hub.publish("a", "not json", "m", false)) << "plain text is not checked";
  try {
    (void)hub.publish("a", "{\"a\":1} trailing", "m", true);
    FAIL() << "invalid JSON accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string{e.what()},
              "event data is marked as JSON but is not valid JSON: unexpected data after the "
              "JSON value, at byte offset 8");
  }
  EXPECT_THROW((void)hub.publish("a", "\"unterminated", "m", true), InvalidArgument);
  EXPECT_THROW((void)hub.publish("a", "", "m", true), InvalidArgument);
  EXPECT_THROW(hub.validate_event("a", "{", "m", true), InvalidArgument);
  EXPECT_NO_THROW(hub.validate_event("a", "{", "m", false));
  // Refused publishes took no id.
  EXPECT_EQ(hub.head_id(), (EventId{0xe1, 2}.to_string()));
}

TEST(HubJson, PublishSequencedRefusesInvalidJson) {
  HubConfig config;
  config.epoch = 0xe1;
  config.sequencing = Sequencing::external;
  Hub hub(config);
  EXPECT_THROW((void)hub.publish_sequenced("a", "[1,", "m", true, EventId{0xe1, 1}),
               InvalidArgument);
  EXPECT_NE(hub.publish_sequenced("a", "[1]", "m", true, EventId{0xe1, 1}), nullptr);
}

std::vector<std::string> names(const std::string& prefix, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(HubChannelCap, RefusedSubscribeChangesNothing) {
  HubConfig config;
  config.max_channels_per_connection = 4;
  Hub hub(config);
  const auto mailbox =
      hub.make_mailbox({Framing::websocket, OverflowPolicy::disconnect, {}}, nullptr);
  (void)hub.subscribe(mailbox, {"c", "a", "b"});
  try {
    (void)hub.subscribe(mailbox, {"a", "d", "e"});
    FAIL() << "subscribe past the cap accepted";
  } catch (const TooManyChannels& e) {
    EXPECT_EQ(e.limit(), 4u);
    EXPECT_EQ(std::string{e.what()},
              "a connection may subscribe to at most 4 channels; it has 3 and asked for 2 more");
  }
  EXPECT_EQ(hub.channels_of(*mailbox), (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_EQ(hub.subscriber_count("d"), 0u);
  // Channels already held and duplicates do not count; reaching the cap is fine.
  (void)hub.subscribe(mailbox, {"a", "d", "d", "c"});
  EXPECT_EQ(hub.channels_of(*mailbox), (std::vector<std::string>{"c", "a", "b", "d"}));
  EXPECT_THROW((void)hub.subscribe(mailbox, {"e"}), InvalidArgument);
  // Unsubscribing frees a slot and keeps the order of the rest.
  hub.unsubscribe(mailbox, "a");
  (void)hub.subscribe(mailbox, {"e"});
  EXPECT_EQ(hub.channels_of(*mailbox), (std::vector<std::string>{"c", "b", "d", "e"}));
  EXPECT_EQ(hub.subscriber_count("a"), 0u);
  EXPECT_EQ(hub.subscriber_count("e"), 1u);
}

TEST(HubChannelCap, OversizedFirstRequestIsRefused) {
  HubConfig config;
  config.max_channels_per_connection = 8;
  Hub hub(config);
  const auto mailbox = hub.make_mailbox({}, nullptr);
  EXPECT_THROW((void)hub.subscribe(mailbox, names("c", 9)), InvalidArgument);
  EXPECT_TRUE(hub.channels_of(*mailbox).empty());
  EXPECT_EQ(hub.channel_count(), 0u);
  EXPECT_TRUE(mailbox->take(1 << 20).data.empty()) << "no position frame for a refused subscribe";
  (void)hub.subscribe(mailbox, names("c", 8));
  EXPECT_EQ(hub.channels_of(*mailbox), names("c", 8));
}

TEST(HubChannelCap, DefaultAndZeroCap) {
  EXPECT_EQ(HubConfig{}.max_channels_per_connection, 256u);
  HubConfig config;
  config.max_channels_per_connection = 0;
  EXPECT_THROW(Hub{config}, InvalidArgument);
  Hub hub;
  const auto mailbox = hub.make_mailbox({}, nullptr);
  (void)hub.subscribe(mailbox, names("c", 256));
  EXPECT_THROW((void)hub.subscribe(mailbox, {"one_more"}), InvalidArgument);
  EXPECT_EQ(hub.channels_of(*mailbox).size(), 256u);
}

}  // namespace
}  // namespace sessionstream
