#pragma once

// Helpers shared by the unit tests: a strict JSON syntax check and an SSE
// parser that follows the EventSource algorithm, so frames are judged the way
// a browser reads them rather than by comparing against the framer's own idea.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sessionstream/core/event.hpp"
#include "sessionstream/core/mailbox.hpp"

namespace sessionstream::test {

// RFC 8259 syntax only; values are not built.
class JsonChecker {
 public:
  explicit JsonChecker(std::string_view text) : text_(text) {}

  [[nodiscard]] bool valid() {
    skip_ws();
    if (!value(0)) return false;
    skip_ws();
    return pos_ == text_.size();
  }

 private:
  [[nodiscard]] bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  [[nodiscard]] bool digit() const {
    return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9';
  }
  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool value(int depth) {
    if (depth > 64 || pos_ >= text_.size()) return false;
    switch (text_[pos_]) {
      case '{':
        return container(depth, '}', true);
      case '[':
        return container(depth, ']', false);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool container(int depth, char close, bool object) {
    ++pos_;
    skip_ws();
    if (at(close)) {
      ++pos_;
      return true;
    }
    while (true) {
      skip_ws();
      if (object) {
        if (!string()) return false;
        skip_ws();
        if (!at(':')) return false;
        ++pos_;
        skip_ws();
      }
      if (!value(depth + 1)) return false;
      skip_ws();
      if (at(',')) {
        ++pos_;
        continue;
      }
      if (at(close)) {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  bool string() {
    if (!at('"')) return false;
    ++pos_;
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (pos_ >= text_.size()) return false;
      const char escape = text_[pos_++];
      if (escape == 'u') {
        for (int i = 0; i < 4; ++i, ++pos_) {
          if (pos_ >= text_.size()) return false;
          const char h = text_[pos_];
          const bool hex =
              (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
          if (!hex) return false;
        }
      } else if (std::string_view{"\"\\/bfnrt"}.find(escape) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool digits() {
    if (!digit()) return false;
    while (digit()) ++pos_;
    return true;
  }

  bool number() {
    if (at('-')) ++pos_;
    if (at('0')) {
      ++pos_;
    } else if (!digits()) {
      return false;
    }
    if (at('.')) {
      ++pos_;
      if (!digits()) return false;
    }
    if (at('e') || at('E')) {
      ++pos_;
      if (at('+') || at('-')) ++pos_;
      if (!digits()) return false;
    }
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

[[nodiscard]] inline bool is_valid_json(std::string_view text) {
  return JsonChecker{text}.valid();
}

// One dispatched SSE message. has_id tells whether the message itself carried
// an id field (EventSource keeps the previous one otherwise).
struct SseMessage {
  std::string id;
  bool has_id = false;
  std::string event = "message";
  std::string data;
};

// What EventSource makes of a byte stream: the messages it dispatched and its
// lastEventId afterwards.
struct SseStream {
  std::vector<SseMessage> messages;
  std::string last_event_id;
};

// Parses a byte stream as EventSource does: lines end with CRLF, LF or CR; a
// blank line dispatches; "data" fields are joined with LF; comments and unknown
// fields are ignored. An "id" field fills the last event ID buffer, which
// every blank line copies into lastEventId even when no message is dispatched
// (a frame without data, such as "id: 1-2\n\n", only moves lastEventId).
// last_event_id is the value carried over from earlier bytes of the stream.
[[nodiscard]] inline SseStream parse_sse_stream(std::string_view stream,
                                                std::string last_event_id = {}) {
  SseStream result;
  result.last_event_id = last_event_id;
  std::string id_buffer = std::move(last_event_id);
  SseMessage current;
  bool has_data = false;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const auto end = stream.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) break;  // an unterminated line is not dispatched
    const std::string_view line = stream.substr(pos, end - pos);
    pos = end + 1;
    if (stream[end] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;
    if (line.empty()) {
      result.last_event_id = id_buffer;
      if (has_data) {
        current.data.pop_back();  // the LF added after the last data line
        result.messages.push_back(std::move(current));
      }
      current = SseMessage{};
      has_data = false;
      continue;
    }
    if (line.front() == ':') continue;
    const auto colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      current.data.append(value);
      current.data.push_back('\n');
      has_data = true;
    } else if (field == "event") {
      current.event = std::string{value};
    } else if (field == "id") {
      if (value.find('\0') != std::string_view::npos) continue;  // ignored, as EventSource does
      current.id = std::string{value};
      current.has_id = true;
      id_buffer = std::string{value};
    }
  }
  return result;
}

// The messages parse_sse_stream dispatches.
[[nodiscard]] inline std::vector<SseMessage> parse_sse(std::string_view stream) {
  return parse_sse_stream(stream).messages;
}

[[nodiscard]] inline EventPtr make_event(std::uint64_t seq, std::string data = "x",
                                         std::string channel = "c", std::string type = "message",
                                         bool data_is_json = false) {
  return std::make_shared<const Event>(std::move(channel), EventId{1, seq}, std::move(type),
                                       std::move(data), data_is_json);
}

// Everything pending, as EventSource reads it; stops at an empty batch.
// last_event_id is the client's lastEventId before the first frame.
[[nodiscard]] inline SseStream drain_sse_stream(Mailbox& mailbox, bool* closed = nullptr,
                                                std::string* reason = nullptr,
                                                std::string last_event_id = {}) {
  SseStream all;
  all.last_event_id = std::move(last_event_id);
  while (true) {
    auto batch = mailbox.take(1 << 20);
    auto parsed = parse_sse_stream(batch.data, std::move(all.last_event_id));
    for (auto& message : parsed.messages) all.messages.push_back(std::move(message));
    all.last_event_id = std::move(parsed.last_event_id);
    if (batch.closed) {
      if (closed) *closed = true;
      if (reason) *reason = batch.close_reason;
      break;
    }
    if (batch.data.empty()) break;
  }
  return all;
}

// Everything pending, as SSE messages; stops at an empty batch.
[[nodiscard]] inline std::vector<SseMessage> drain_sse(Mailbox& mailbox, bool* closed = nullptr,
                                                       std::string* reason = nullptr) {
  return drain_sse_stream(mailbox, closed, reason).messages;
}

// Sequence numbers of the event (non-control) messages, in arrival order.
[[nodiscard]] inline std::vector<std::uint64_t> event_seqs(
    const std::vector<SseMessage>& messages) {
  std::vector<std::uint64_t> seqs;
  for (const auto& message : messages) {
    if (message.event == "gap" || message.event == "reset") continue;
    if (const auto id = EventId::parse(message.id)) seqs.push_back(id->seq);
  }
  return seqs;
}

[[nodiscard]] inline std::vector<std::string> event_names(const std::vector<SseMessage>& messages) {
  std::vector<std::string> names;
  for (const auto& message : messages) names.push_back(message.event);
  return names;
}

// Polls until predicate holds or the timeout passes; returns the last result.
template <typename Predicate>
[[nodiscard]] bool eventually(Predicate predicate,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace sessionstream::test
