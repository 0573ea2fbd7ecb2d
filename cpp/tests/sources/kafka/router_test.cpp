#include <gtest/gtest.h>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/kafka/router.hpp"
#include "sources/kafka/rd.hpp"

namespace sessionstream::kafka {
namespace {

RecordView record(std::string_view value, std::optional<std::string_view> key = "k1",
                  std::vector<RecordHeader> headers = {}) {
  RecordView r;
  r.topic = "party";
  r.partition = 2;
  r.offset = 41;
  r.key = key;
  r.headers = std::move(headers);
  r.value = value;
  return r;
}

RoutedRecord ok(const std::variant<RoutedRecord, Skip>& result) {
  if (const auto* skip = std::get_if<Skip>(&result)) {
    ADD_FAILURE() << "skipped: " << to_string(skip->kind) << " " << skip->detail;
    return {};
  }
  return std::get<RoutedRecord>(result);
}

SkipKind skipped(const std::variant<RoutedRecord, Skip>& result) {
  const auto* skip = std::get_if<Skip>(&result);
  if (skip == nullptr) {
    ADD_FAILURE() << "routed to " << std::get<RoutedRecord>(result).channel;
    return SkipKind::too_large;
  }
  return skip->kind;
}

TEST(KafkaRouter, TopicAndKeyTemplate) {
  const Router router("{topic}:{key}", "message", PayloadFormat::auto_detect);
  const auto routed = ok(router.route(record(R"({"a":1})")));
  EXPECT_EQ(routed.channel, "party:k1");
  EXPECT_EQ(routed.type, "message");
  EXPECT_TRUE(routed.json);
}

TEST(KafkaRouter, PartitionHeaderAndLiteralBraces) {
  const Router router("{{x}}-{partition}-{header:tenant}", "{header:type}", PayloadFormat::text);
  const auto routed =
      ok(router.route(record("plain", "k", {{"tenant", "t1"}, {"type", "a"}, {"type", "b"}})));
  EXPECT_EQ(routed.channel, "{x}-2-t1");
  EXPECT_EQ(routed.type, "b");  // the last header of a name wins
  EXPECT_FALSE(routed.json);
}

TEST(KafkaRouter, JsonFieldsNestedAndScalars) {
  const Router router("acct:{json:account.id}", "{json:kind}", PayloadFormat::json);
  const auto routed = ok(router.route(
      record(R"({"kind":"deposit","skip":[1,{"x":"}"}],"account":{"id":"A\u00e9-7","n":3}})")));
  EXPECT_EQ(routed.channel, "acct:A\xc3\xa9-7");
  EXPECT_EQ(routed.type, "deposit");
  const Router numeric("n:{json:account.n}:{json:flag}", "m", PayloadFormat::json);
  EXPECT_EQ(ok(numeric.route(record(R"({"account":{"n":-1.5e3},"flag":true})"))).channel,
            "n:-1.5e3:true");
}

TEST(KafkaRouter, MalformedRecordsAreSkippedByKind) {
  const Router by_json("{json:id}", "message", PayloadFormat::auto_detect);
  EXPECT_EQ(skipped(by_json.route(record("{not json"))), SkipKind::bad_json);
  EXPECT_EQ(skipped(by_json.route(record(R"({"other":1})"))), SkipKind::missing_field);
  EXPECT_EQ(skipped(by_json.route(record(R"({"id":null})"))), SkipKind::missing_field);
  EXPECT_EQ(skipped(by_json.route(record(R"({"id":{"a":1}})"))), SkipKind::missing_field);

  const Router by_key("k:{key}", "message", PayloadFormat::auto_detect);
  EXPECT_EQ(skipped(by_key.route(record("x", std::nullopt))), SkipKind::missing_key);
  EXPECT_EQ(skipped(by_key.route(record("x", ""))), SkipKind::missing_key);

  const Router by_header("{header:h}", "message", PayloadFormat::auto_detect);
  EXPECT_EQ(skipped(by_header.route(record("x", "k", {{"h", std::nullopt}}))),
            SkipKind::missing_header);

  const Router json_only("{topic}", "message", PayloadFormat::json);
  EXPECT_EQ(skipped(json_only.route(record("plain text"))), SkipKind::bad_json);
}

TEST(KafkaRouter, AutoFormatSendsInvalidJsonAsText) {
  const Router router("{topic}", "message", PayloadFormat::auto_detect);
  EXPECT_FALSE(ok(router.route(record("{\"a\":"))).json);
  EXPECT_TRUE(ok(router.route(record(" [1, 2] "))).json);
  EXPECT_FALSE(ok(router.route(record(""))).json);
}

TEST(KafkaRouter, ExtraVariables) {
  const Router router("session:{session}", "{domain}", PayloadFormat::auto_detect,
                      {"session", "domain"});
  const auto routed =
      ok(router.route(record("{}"), {{"session", "abcdefgh12"}, {"domain", "party"}}));
  EXPECT_EQ(routed.channel, "session:abcdefgh12");
  EXPECT_EQ(routed.type, "party");
}

TEST(KafkaRouter, BadTemplatesNameThePlaceholders) {
  for (const char* bad : {"{nope}", "{topic", "a}b", "{json:}", "{json:a..b}", "{header:}", ""}) {
    try {
      (void)Template::parse(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string{e.what()}.find("{topic}"), std::string::npos) << e.what();
    }
  }
}

TEST(KafkaRouter, PublishRoutedSkipsWhatTheHubRefusesByKind) {
  HubConfig config;
  config.max_event_bytes = 64;
  Hub hub{config};
  const auto mailbox =
      hub.make_mailbox({Framing::websocket, OverflowPolicy::disconnect, {}}, nullptr);
  hub.subscribe(mailbox, {"orders:k1"});
  const Router router("orders:{key}", "{header:type}", PayloadFormat::auto_detect);
  const auto publish = [&](std::string_view value, std::optional<std::string_view> key = "k1",
                           std::string_view type = "created") {
    const RecordView r = record(value, key, {{"type", type}});
    return publish_routed(hub, ok(router.route(r)), r.value);
  };
  const auto kind = [](const std::variant<EventPtr, Skip>& outcome) {
    const auto* skip = std::get_if<Skip>(&outcome);
    return skip ? std::optional<SkipKind>{skip->kind} : std::nullopt;
  };

  // A value that is not UTF-8 is counted as such, naming the offset; it is
  // not published, so no frame and no history entry carry it.
  const auto binary = publish("ok\xff\xfe");
  ASSERT_EQ(kind(binary), SkipKind::invalid_utf8);
  EXPECT_NE(std::get<Skip>(binary).detail.find("byte offset 2"), std::string::npos)
      << std::get<Skip>(binary).detail;
  EXPECT_EQ(kind(publish("{\"text\":\"\xc3(\"}")), SkipKind::invalid_utf8) << "inside JSON too";
  EXPECT_EQ(kind(publish("\xed\xa0\x80")), SkipKind::invalid_utf8);
  EXPECT_EQ(Metrics::read(hub.metrics().published), 0u);
  EXPECT_TRUE(mailbox->take(1 << 20).data.empty());

  // Other refusals keep their own kinds.
  EXPECT_EQ(kind(publish("x", "has space")), SkipKind::invalid_channel);
  const auto bad_key = publish("x", "bin\xff");
  ASSERT_EQ(kind(bad_key), SkipKind::invalid_channel);
  EXPECT_TRUE(is_valid_utf8(std::get<Skip>(bad_key).detail)) << "the note quotes it as text";
  EXPECT_EQ(kind(publish("x", "k1", "caf\xc3")), SkipKind::invalid_type);
  EXPECT_EQ(kind(publish("x", "k1", "two words")), SkipKind::invalid_type);
  EXPECT_EQ(kind(publish(std::string(65, 'x'))), SkipKind::too_large);

  const auto good = publish("caf\xc3\xa9", "k1", "created");
  ASSERT_EQ(kind(good), std::nullopt);
  EXPECT_EQ(std::get<EventPtr>(good)->channel(), "orders:k1");
  const auto batch = mailbox->take(1 << 20);
  EXPECT_NE(batch.data.find("\"data\":\"caf\xc3\xa9\""), std::string::npos) << batch.data;
  EXPECT_EQ(to_string(SkipKind::invalid_utf8), std::string{"invalid_utf8"});
}

TEST(KafkaRouter, InvalidUtf8IsNotedOncePerManyRecordsOtherKindsOnce) {
  detail::NoteLog notes{4096};
  const RecordView r = record("\xff");
  const auto noted = [&] {
    std::vector<std::string> messages;
    for (auto& note : notes.take()) messages.push_back(note.message);
    return messages;
  };
  const std::uint64_t every = detail::kInvalidUtf8NoteEvery;
  for (std::uint64_t count = 1; count <= 2 * every + 1; ++count) {
    detail::note_skip(notes, SkipKind::invalid_utf8, count, r, "not UTF-8");
  }
  const auto utf8_notes = noted();
  ASSERT_EQ(utf8_notes.size(), 3u);
  EXPECT_NE(utf8_notes[0].find("party/2@41 (invalid_utf8): not UTF-8; 1 such"), std::string::npos)
      << utf8_notes[0];
  EXPECT_NE(utf8_notes[2].find(std::to_string(2 * every + 1) + " such"), std::string::npos)
      << utf8_notes[2];
  for (std::uint64_t count = 1; count <= 2 * every + 1; ++count) {
    detail::note_skip(notes, SkipKind::bad_json, count, r, "not JSON");
  }
  EXPECT_EQ(noted().size(), 1u);
}

TEST(KafkaJson, Validation) {
  for (const char* good : {"0", "-0.5e+3", "\"a\\u00e9\\n\"", "[]", "{}",
                           " {\"a\":[true,false,null]} ", "[\"\\ud83d\\ude00\"]"}) {
    EXPECT_TRUE(json::valid(good)) << good;
  }
  for (const char* bad : {"", "01", "1.", "[1,]", "{\"a\"}", "{\"a\":1,}", "\"\x01\"", "nul",
                          "[1] x", "\"\\x\"", "{'a':1}"}) {
    EXPECT_FALSE(json::valid(bad)) << bad;
  }
  std::string deep(200, '[');
  deep += std::string(200, ']');
  EXPECT_FALSE(json::valid(deep));
}

}  // namespace
}  // namespace sessionstream::kafka
