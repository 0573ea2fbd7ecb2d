#include "sessionstream/core/event.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <latch>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::is_valid_json;
using test::parse_sse;
using test::parse_sse_stream;

constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();

TEST(EventId, TextIsHexEpochDashDecimalSeq) {
  EXPECT_EQ((EventId{0xabc, 42}.to_string()), "abc-42");
  EXPECT_EQ((EventId{0, 0}.to_string()), "0-0");
  EXPECT_EQ((EventId{kMax, kMax}.to_string()), "ffffffffffffffff-18446744073709551615");
}

TEST(EventId, RoundTripsThroughText) {
  for (const EventId id : {EventId{1, 0}, EventId{0, 1}, EventId{0x19a3f2b4c5d, 7},
                           EventId{kMax, kMax}, EventId{0x10, 1000000}}) {
    const auto parsed = EventId::parse(id.to_string());
    ASSERT_TRUE(parsed.has_value()) << id.to_string();
    EXPECT_EQ(*parsed, id) << id.to_string();
  }
}

TEST(EventId, ParseRejectsAnythingButTheTextForm) {
  const std::string overlong_epoch = std::string(17, 'f') + "-1";
  const std::string overlong_seq = "1-" + std::string(21, '1');
  const std::string overflowing_seq = "1-18446744073709551616";  // 2^64
  const std::string huge = std::string(4096, '1') + "-" + std::string(4096, '2');
  const std::vector<std::string_view> garbage = {"",
                                                 "-",
                                                 "abc",
                                                 "1-",
                                                 "-1",
                                                 "zz-1",
                                                 "1-2x",
                                                 "1--2",
                                                 "-1-2",
                                                 "1-+2",
                                                 "+1-2",
                                                 " 1-2",
                                                 "1-2 ",
                                                 "1_2",
                                                 "0x1-2",
                                                 "1-2-3",
                                                 "1-0x2",
                                                 "g-1",
                                                 "1-a",
                                                 std::string_view{"1-\0"
                                                                  "2",
                                                                  4},
                                                 std::string_view{overlong_epoch},
                                                 std::string_view{overlong_seq},
                                                 std::string_view{overflowing_seq},
                                                 std::string_view{huge}};
  for (const std::string_view text : garbage) {
    EXPECT_FALSE(EventId::parse(text).has_value()) << "accepted '" << text << "'";
  }
}

TEST(EventId, ParseAcceptsTheLongestValidFields) {
  const auto id = EventId::parse("ffffffffffffffff-18446744073709551615");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->epoch, kMax);
  EXPECT_EQ(id->seq, kMax);
}

TEST(EventSse, FramesIdTypeAndData) {
  const Event event{"ch", EventId{0xa, 5}, "update", "hello", false};
  EXPECT_EQ(event.sse_frame(), "id: a-5\nevent: update\ndata: hello\n\n");
  EXPECT_EQ(event.id_text(), "a-5");
  EXPECT_FALSE(event.is_control());
  EXPECT_EQ(event.cost_bytes(), 5 + Event::kOverheadBytes);
}

TEST(EventSse, DefaultTypeHasNoEventLine) {
  const Event event{"ch", EventId{1, 1}, "message", "x", false};
  EXPECT_EQ(event.sse_frame(), "id: 1-1\ndata: x\n\n");
}

TEST(EventSse, EveryLineOfDataGetsItsOwnField) {
  struct Case {
    std::string data;
    std::string fields;   // the data fields the frame must contain
    std::string browser;  // what EventSource hands to the page
  };
  const std::vector<Case> cases = {
      {"a\nb", "data: a\ndata: b\n", "a\nb"},
      {"a\r\nb", "data: a\ndata: b\n", "a\nb"},
      {"a\rb", "data: a\ndata: b\n", "a\nb"},
      {"a\n\nb", "data: a\ndata: \ndata: b\n", "a\n\nb"},
      {"a\n\rb", "data: a\ndata: \ndata: b\n", "a\n\nb"},
      {"a\r\n", "data: a\ndata: \n", "a\n"},
      {"\n", "data: \ndata: \n", "\n"},
      {"", "data: \n", ""},
      {"line1\r\nline2\rline3\nline4", "data: line1\ndata: line2\ndata: line3\ndata: line4\n",
       "line1\nline2\nline3\nline4"},
  };
  for (const auto& c : cases) {
    const Event event{"ch", EventId{1, 2}, "message", c.data, false};
    EXPECT_EQ(event.sse_frame(), "id: 1-2\n" + c.fields + "\n") << testing::PrintToString(c.data);
    const auto messages = parse_sse(event.sse_frame());
    ASSERT_EQ(messages.size(), 1u) << testing::PrintToString(c.data);
    EXPECT_EQ(messages[0].data, c.browser) << testing::PrintToString(c.data);
    EXPECT_EQ(messages[0].id, "1-2");
  }
}

TEST(EventSse, TypeAndIdCannotInjectFields) {
  const Event event{"ch", EventId{1, 3}, "evil\nid: 999\r\ndata: injected\r", "payload", false};
  const std::string& frame = event.sse_frame();
  EXPECT_EQ(frame, "id: 1-3\nevent: evilid: 999data: injected\ndata: payload\n\n");
  const auto messages = parse_sse(frame);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].id, "1-3");
  EXPECT_EQ(messages[0].data, "payload");

  const auto control = Event::control("reset", "", "1-4\nevent: x\r\ndata: y");
  const auto control_messages = parse_sse(control->sse_frame());
  ASSERT_EQ(control_messages.size(), 1u);
  EXPECT_EQ(control_messages[0].id, "1-4event: xdata: y");
  EXPECT_EQ(control_messages[0].event, "reset");
  EXPECT_EQ(control_messages[0].data, "{}");
}

TEST(EventWs, StringDataIsEscaped) {
  const Event event{"ch\"1", EventId{1, 2}, "t", "say \"hi\"\\\n\t\x01\x1f\r/end", false};
  EXPECT_EQ(event.ws_object(), R"({"type":"event","id":"1-2","channel":"ch\"1","event":"t",)"
                               R"("data":"say \"hi\"\\\n\t\u0001\u001f\r/end"})");
  EXPECT_TRUE(is_valid_json(event.ws_object()));
}

TEST(EventWs, JsonDataIsEmbeddedAndOtherDataIsAString) {
  const Event json{"c", EventId{1, 3}, "t", R"({"n":1,"s":"x"})", true};
  EXPECT_EQ(json.ws_object(),
            R"({"type":"event","id":"1-3","channel":"c","event":"t","data":{"n":1,"s":"x"}})");
  EXPECT_TRUE(is_valid_json(json.ws_object()));

  const Event text{"c", EventId{1, 3}, "t", R"({"n":1})", false};
  EXPECT_EQ(text.ws_object(),
            R"({"type":"event","id":"1-3","channel":"c","event":"t","data":"{\"n\":1}"})");
  EXPECT_TRUE(is_valid_json(text.ws_object()));
}

TEST(AppendJsonString, EscapesEveryControlCharacterAndKeepsTheRest) {
  for (int c = 0; c < 0x20; ++c) {
    std::string out;
    append_json_string(out, std::string(1, static_cast<char>(c)));
    EXPECT_TRUE(is_valid_json(out)) << "control character " << c << " gave " << out;
    EXPECT_GT(out.size(), 3u) << "control character " << c << " was not escaped";
  }
  std::string out = "prefix:";
  append_json_string(out, "caf\xc3\xa9 \x7f /");
  EXPECT_EQ(out, "prefix:\"caf\xc3\xa9 \x7f /\"");
  std::string quoted;
  append_json_string(quoted, R"(a"b\c)");
  EXPECT_EQ(quoted, R"("a\"b\\c")");
}

TEST(EventControl, HasNoIdUnlessGiven) {
  const auto gap = Event::control("gap", R"("missed":3)");
  EXPECT_TRUE(gap->is_control());
  EXPECT_EQ(gap->cost_bytes(), 0u);
  EXPECT_EQ(gap->sse_frame(), "event: gap\ndata: {\"missed\":3}\n\n");
  EXPECT_EQ(gap->ws_object(), R"({"type":"gap","missed":3})");
  const auto gap_messages = parse_sse(gap->sse_frame());
  ASSERT_EQ(gap_messages.size(), 1u);
  EXPECT_FALSE(gap_messages[0].has_id);

  const auto reset = Event::control("reset", R"("reason":"x")", "a-9");
  EXPECT_EQ(reset->sse_frame(), "id: a-9\nevent: reset\ndata: {\"reason\":\"x\"}\n\n");
  EXPECT_EQ(reset->ws_object(), R"({"type":"reset","reason":"x","id":"a-9"})");
  EXPECT_TRUE(is_valid_json(reset->ws_object()));

  const auto bare = Event::control("ping", "");
  EXPECT_EQ(bare->ws_object(), R"({"type":"ping"})");
  EXPECT_EQ(bare->sse_frame(), "event: ping\ndata: {}\n\n");
}

TEST(SseParser, IdOnlyFrameSetsTheLastIdWithoutDispatching) {
  const auto stream = parse_sse_stream("id: a-1\n\n");
  EXPECT_TRUE(stream.messages.empty());
  EXPECT_EQ(stream.last_event_id, "a-1");

  // The id outlives later messages that carry none, is replaced by the next
  // one, and only a blank line makes it the last event id.
  const auto later =
      parse_sse_stream("id: a-1\n\nevent: gap\ndata: {}\n\nid: a-2\ndata: x\n\nid: a-3\n", "a-0");
  ASSERT_EQ(later.messages.size(), 2u);
  EXPECT_FALSE(later.messages[0].has_id);
  EXPECT_TRUE(later.messages[1].has_id);
  EXPECT_EQ(later.messages[1].id, "a-2");
  EXPECT_EQ(later.last_event_id, "a-2") << "an unterminated frame moved the last id";

  EXPECT_EQ(parse_sse_stream("event: gap\ndata: {}\n\n", "a-0").last_event_id, "a-0");
  EXPECT_EQ(parse_sse_stream("id\n\n", "a-0").last_event_id, "") << "an empty id clears it";
  EXPECT_EQ(parse_sse_stream(std::string_view{"id: a-\0"
                                              "9\n\n",
                                              10},
                             "a-0")
                .last_event_id,
            "a-0")
      << "an id with NUL is ignored";
}

TEST(EventPosition, IsAnIdOnlyFrameThatDispatchesNothing) {
  const auto position = Event::position("a-7");
  EXPECT_TRUE(position->is_control());
  EXPECT_EQ(position->cost_bytes(), 0u);
  EXPECT_EQ(position->id_text(), "a-7");
  EXPECT_EQ(position->sse_frame(), "id: a-7\n\n");
  const auto stream = parse_sse_stream(position->sse_frame(), "a-3");
  EXPECT_TRUE(stream.messages.empty()) << "a position frame dispatched a message";
  EXPECT_EQ(stream.last_event_id, "a-7");

  EXPECT_EQ(position->ws_object(), R"({"type":"position","id":"a-7"})");
  EXPECT_TRUE(is_valid_json(position->ws_object()));

  // The id is a single-line field here too.
  const auto hostile = Event::position("a-8\ndata: injected\r");
  EXPECT_EQ(hostile->sse_frame(), "id: a-8data: injected\n\n");
  EXPECT_TRUE(parse_sse(hostile->sse_frame()).empty());
  EXPECT_TRUE(is_valid_json(hostile->ws_object())) << hostile->ws_object();
}

TEST(EventFraming, ComputedOnceAndReused) {
  const Event event{"c", EventId{1, 1}, "t", "data", false};
  const char* const sse = event.sse_frame().data();
  const char* const ws = event.ws_object().data();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(event.sse_frame().data(), sse);
    EXPECT_EQ(event.ws_object().data(), ws);
  }
}

TEST(EventFraming, ConcurrentFirstUseBuildsOneFrame) {
  std::string data;
  for (int i = 0; i < 2000; ++i) data += "line " + std::to_string(i) + "\r\n";
  const auto event = std::make_shared<const Event>("c", EventId{7, 9}, "t", data, false);

  constexpr int kThreads = 8;
  std::latch start{kThreads};
  std::vector<const char*> sse(kThreads);
  std::vector<const char*> ws(kThreads);
  std::vector<std::size_t> sse_sizes(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        // Half start with each framing so both once-paths race.
        if (t % 2 == 0) {
          sse[t] = event->sse_frame().data();
          ws[t] = event->ws_object().data();
        } else {
          ws[t] = event->ws_object().data();
          sse[t] = event->sse_frame().data();
        }
        sse_sizes[t] = event->sse_frame().size();
      });
    }
  }
  for (int t = 1; t < kThreads; ++t) {
    EXPECT_EQ(sse[t], sse[0]);
    EXPECT_EQ(ws[t], ws[0]);
    EXPECT_EQ(sse_sizes[t], sse_sizes[0]);
  }
  const auto messages = parse_sse(event->sse_frame());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].data.size(), data.size() - 2000);  // each CRLF reads back as LF
  EXPECT_TRUE(is_valid_json(event->ws_object()));
}

}  // namespace
}  // namespace sessionstream
