// SSE framing of arbitrary payloads: an EventSource parsing the frame (the
// WHATWG event-stream rules) must get back exactly one event with the
// payload's lines, the type and the id, and nothing can inject a field. The
// WebSocket object of the same event must be JSON.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/common/json_check.hpp"
#include "sessionstream/core/event.hpp"

namespace {

struct Parsed {
  std::vector<std::string> data;  // data buffer of each dispatched event
  std::vector<std::string> type;
  std::string last_id;
  std::size_t other_fields = 0;
};

// The event-stream interpretation rules, minus retry and BOM handling.
Parsed parse_event_stream(std::string_view stream) {
  Parsed parsed;
  std::string data;
  std::string type;
  bool has_data = false;
  std::size_t start = 0;
  while (start < stream.size()) {
    std::size_t end = stream.find_first_of("\r\n", start);
    if (end == std::string_view::npos) break;  // an unterminated line is not processed
    const std::string_view line = stream.substr(start, end - start);
    start = end + 1;
    if (stream[end] == '\r' && start < stream.size() && stream[start] == '\n') ++start;
    if (line.empty()) {
      if (has_data) {
        if (!data.empty() && data.back() == '\n') data.pop_back();
        parsed.data.push_back(data);
        parsed.type.push_back(type.empty() ? "message" : type);
      }
      data.clear();
      type.clear();
      has_data = false;
      continue;
    }
    if (line.front() == ':') continue;
    const auto colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "data") {
      data.append(value);
      data.push_back('\n');
      has_data = true;
    } else if (name == "event") {
      type = value;
    } else if (name == "id") {
      parsed.last_id = value;
    } else {
      ++parsed.other_fields;
    }
  }
  return parsed;
}

std::string normalize_newlines(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string strip_breaks(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  using namespace sessionstream;
  FuzzedDataProvider input(bytes, size);
  const bool json = input.ConsumeBool();
  const std::uint64_t epoch = input.ConsumeIntegral<std::uint64_t>();
  const std::uint64_t seq = input.ConsumeIntegral<std::uint64_t>();
  std::string type = input.ConsumeRandomLengthString(64);
  std::string channel = input.ConsumeRandomLengthString(64);
  std::string data = input.ConsumeRemainingBytesAsString();
  const bool json_data = json && is_valid_json(data);

  const Event event{channel, EventId{epoch, seq}, type, data, json_data};
  const Parsed parsed = parse_event_stream(event.sse_frame());
  if (parsed.other_fields != 0) std::abort();
  if (parsed.data.size() != 1) std::abort();
  if (parsed.data[0] != normalize_newlines(data)) std::abort();
  const std::string stripped = strip_breaks(type);
  if (parsed.type[0] != (stripped.empty() ? "message" : stripped)) std::abort();
  if (parsed.last_id != event.id_text()) std::abort();

  if (!is_valid_json(event.ws_object())) std::abort();

  // A frame without an id leaves the client's last event id alone.
  const auto transient = Event::transient(channel, type, data, json_data);
  const Parsed live = parse_event_stream(transient->sse_frame());
  if (!live.last_id.empty() || live.data.size() != 1 || live.other_fields != 0) std::abort();
  if (!is_valid_json(transient->ws_object())) std::abort();
  return 0;
}
