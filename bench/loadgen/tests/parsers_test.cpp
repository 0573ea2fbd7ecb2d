#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chunked_decoder.hpp"
#include "histogram.hpp"
#include "http_head.hpp"
#include "json_scan.hpp"
#include "run_stats.hpp"
#include "sse_parser.hpp"
#include "url.hpp"

using namespace loadgen;

namespace {

struct Seen {
  std::string type, data, id;
};

std::vector<Seen> feed_split(const std::string& stream, std::size_t piece) {
  SseParser p;
  std::vector<Seen> out;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    auto chunk = stream.substr(i, piece);
    EXPECT_TRUE(p.feed(chunk.data(), chunk.size(), [&](std::string_view t, std::string_view d) {
      out.push_back({std::string(t), std::string(d), p.last_id()});
    }));
  }
  return out;
}

}  // namespace

TEST(SseParser, DispatchesOnBlankLineWithAnySplit) {
  const std::string stream =
      ": hello\r\n\r\nid: 7\r\nevent: gap\r\ndata: {\"a\":1}\r\n\r\n"
      "data: x\ndata: y\n\nid: 8\rdata: z\r\r";
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    auto seen = feed_split(stream, piece);
    ASSERT_EQ(seen.size(), 3u) << "piece " << piece;
    EXPECT_EQ(seen[0].type, "gap");
    EXPECT_EQ(seen[0].data, "{\"a\":1}");
    EXPECT_EQ(seen[0].id, "7");
    EXPECT_EQ(seen[1].type, "message");
    EXPECT_EQ(seen[1].data, "x\ny");
    EXPECT_EQ(seen[1].id, "7");  // the id persists across events
    EXPECT_EQ(seen[2].data, "z");
    EXPECT_EQ(seen[2].id, "8");
  }
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  auto seen = feed_split("event: reset\n\nid: 3\n\n", 4);
  EXPECT_TRUE(seen.empty());
}

TEST(SseParser, RejectsUnboundedLine) {
  SseParser p;
  std::string big(SseParser::kMaxLine + 1, 'a');
  EXPECT_FALSE(p.feed(big.data(), big.size(), [](auto, auto) {}));
}

TEST(ChunkedDecoder, DecodesAcrossSplitsAndStopsAtEnd) {
  const std::string wire =
      "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\ntrailing";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    ChunkedDecoder d;
    std::string body;
    ChunkedDecoder::Status st = ChunkedDecoder::Status::more;
    for (std::size_t i = 0; i < wire.size() && st == ChunkedDecoder::Status::more; i += piece) {
      auto chunk = wire.substr(i, piece);
      st = d.feed(chunk.data(), chunk.size(), [&](std::string_view s) { body += s; });
    }
    EXPECT_EQ(st, ChunkedDecoder::Status::done) << "piece " << piece;
    EXPECT_EQ(body, "helloabcdefghijklmnopqrstuvwxyz");
  }
}

TEST(ChunkedDecoder, FlagsBadFraming) {
  ChunkedDecoder d;
  std::string wire = "zz\r\n";
  EXPECT_EQ(d.feed(wire.data(), wire.size(), [](std::string_view) {}),
            ChunkedDecoder::Status::error);
}

TEST(HttpHead, ParsesStatusAndFraming) {
  std::string head =
      "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: "
      "chunked\r\n\r\nbody";
  auto end = find_head_end(head);
  ASSERT_EQ(head.substr(end), "body");
  auto h = parse_response_head(std::string_view(head).substr(0, end));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->body, ResponseHead::Body::chunked);
  EXPECT_EQ(h->content_type, "text/event-stream");

  auto h2 = parse_response_head("HTTP/1.1 503 Busy\r\nContent-Length: 12\r\n\r\n");
  ASSERT_TRUE(h2);
  EXPECT_EQ(h2->status, 503);
  EXPECT_EQ(h2->body, ResponseHead::Body::length);
  EXPECT_EQ(h2->content_length, 12u);
  EXPECT_FALSE(parse_response_head("SPDY nonsense\r\n\r\n"));
}

TEST(JsonScan, FindsPayloadFieldsAtTopLevelOnly) {
  auto p =
      json::scan_payload(R"({"pad":"\"t\":5","nested":{"seq":9},"t":1700000000000001,"seq":42})");
  EXPECT_TRUE(p.has_t);
  EXPECT_TRUE(p.has_seq);
  EXPECT_EQ(p.t, 1700000000000001);
  EXPECT_EQ(p.seq, 42);
  EXPECT_FALSE(json::scan_payload("plain text").has_seq);
  EXPECT_FALSE(json::scan_payload(R"({"t":1.5})").has_t);
}

TEST(JsonScan, WalksArraysOfEventObjects) {
  std::string msg =
      R"([{"type":"event","id":"1-5","channel":"bench","event":"m","data":{"t":10,"seq":5}},)"
      R"( {"type":"gap","from":"1-6"}])";
  std::vector<std::string> types;
  EXPECT_TRUE(json::for_each_element(msg, [&](std::string_view e) {
    json::for_each_member(e, [&](std::string_view k, std::string_view v) {
      if (k == "type") types.emplace_back(json::string_content(v));
      return true;
    });
    return true;
  }));
  EXPECT_EQ(types, (std::vector<std::string>{"event", "gap"}));
  EXPECT_FALSE(json::for_each_element("[1,", [](std::string_view) { return true; }));
}

TEST(LogHistogram, QuantilesWithinOnePercent) {
  LogHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double exact = q * 100000;
    double got = static_cast<double>(h.quantile(q));
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * 1.008 + 1) << q;
  }
  EXPECT_EQ(h.quantile(1.0), 100000u);
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 511ull, 512ull, 1ull << 40, ~0ull}) {
    auto i = LogHistogram::index_of(v);
    EXPECT_GE(LogHistogram::upper_bound_of(i), v);
    if (i > 0) {
      EXPECT_LT(LogHistogram::upper_bound_of(i - 1), v);
    }
  }
}

TEST(RunStats, CountsGapsDuplicatesAndAnnouncedGaps) {
  RunStats s;
  s.phase = Phase::measure;
  StreamCursor c;
  auto ev = [&](std::int64_t seq) {
    json::Payload p;
    p.has_seq = true;
    p.seq = seq;
    p.has_t = true;
    p.t = 100;
    s.on_event(c, p, 150);
  };
  ev(1);
  ev(2);
  ev(5);  // silent gap of 2
  ev(5);  // duplicate
  s.on_gap_marker(c);
  ev(9);  // announced: not a silent gap
  EXPECT_EQ(s.gaps, 1u);
  EXPECT_EQ(s.missed_events, 2u);
  EXPECT_EQ(s.duplicates, 1u);
  EXPECT_EQ(s.deliveries, 5u);
  EXPECT_EQ(s.latency_us.max(), 50u);

  c.resumed = true;
  ev(11);
  EXPECT_EQ(s.resume_gaps, 1u);
  EXPECT_EQ(s.resume_verified, 1u);
  EXPECT_EQ(s.deliveries, 5u);  // storm deliveries are counted apart
  EXPECT_EQ(s.storm_deliveries, 1u);
}

TEST(Url, ParsesHostPortAndTarget) {
  auto u = parse_url("http://127.0.0.1:8000/stream/sse?channel=bench");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8000);
  EXPECT_EQ(u.target, "/stream/sse?channel=bench");
  EXPECT_EQ(u.host_header, "127.0.0.1:8000");
  auto w = parse_url("ws://[::1]:9/x");
  EXPECT_EQ(w.scheme, Url::Scheme::ws);
  EXPECT_EQ(w.host, "::1");
  EXPECT_EQ(parse_url("http://h?q=1").target, "/?q=1");
  EXPECT_THROW(parse_url("https://h/"), std::invalid_argument);
}
