#include "sessionstream/core/event.hpp"

#include <charconv>
#include <cstdio>

namespace sessionstream {

std::string EventId::to_string() const {
  char buffer[48];
  const int n =
      std::snprintf(buffer, sizeof buffer, "%llx-%llu", static_cast<unsigned long long>(epoch),
                    static_cast<unsigned long long>(seq));
  return {buffer, static_cast<std::size_t>(n)};
}

std::optional<EventId> EventId::parse(std::string_view text) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size() || dash > 16 ||
      text.size() - dash - 1 > 20) {
    return std::nullopt;
  }
  EventId id;
  const char* const begin = text.data();
  const auto epoch = std::from_chars(begin, begin + dash, id.epoch, 16);
  if (epoch.ec != std::errc{} || epoch.ptr != begin + dash) return std::nullopt;
  const auto seq = std::from_chars(begin + dash + 1, begin + text.size(), id.seq, 10);
  if (seq.ec != std::errc{} || seq.ptr != begin + text.size()) return std::nullopt;
  return id;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

Event::Event(std::string channel, EventId id, std::string type, std::string data, bool data_is_json,
             Clock::time_point timestamp)
    : channel_(std::move(channel)),
      id_(id),
      id_text_(id.to_string()),
      type_(std::move(type)),
      data_(std::move(data)),
      data_is_json_(data_is_json),
      timestamp_(timestamp) {}

std::shared_ptr<const Event> Event::control(std::string type, std::string json_fields,
                                            std::string sse_id) {
  auto event = std::make_shared<Event>(std::string{}, EventId{}, std::move(type),
                                       "{" + json_fields + "}", true);
  event->id_text_ = std::move(sse_id);
  event->control_ = true;
  return event;
}

std::shared_ptr<const Event> Event::transient(std::string channel, std::string type,
                                              std::string data, bool data_is_json) {
  auto event = std::make_shared<Event>(std::move(channel), EventId{}, std::move(type),
                                       std::move(data), data_is_json);
  event->id_text_.clear();
  return event;
}

std::shared_ptr<const Event> Event::position(std::string id) {
  auto event =
      std::make_shared<Event>(std::string{}, EventId{}, std::string{}, std::string{}, true);
  event->id_text_ = std::move(id);
  event->control_ = true;
  event->position_ = true;
  return event;
}

namespace {

// SSE forbids CR and LF inside a field; each line of data becomes its own
// "data:" field, which EventSource joins back with "\n".
void append_sse_data(std::string& out, std::string_view data) {
  std::size_t start = 0;
  while (true) {
    const auto end = data.find_first_of("\r\n", start);
    out += "data: ";
    out.append(data.substr(start, end == std::string_view::npos ? end : end - start));
    out.push_back('\n');
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
}

// Event type and id are single-line fields; strip line breaks rather than
// letting them inject fields.
void append_sse_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  for (const char c : value) {
    if (c != '\n' && c != '\r') out.push_back(c);
  }
  out.push_back('\n');
}

}  // namespace

const std::string& Event::sse_frame() const {
  std::call_once(sse_once_, [this] {
    std::string frame;
    frame.reserve(data_.size() + id_text_.size() + type_.size() + 32);
    if (!id_text_.empty()) append_sse_field(frame, "id", id_text_);
    if (!position_) {
      if (!type_.empty() && type_ != "message") append_sse_field(frame, "event", type_);
      append_sse_data(frame, data_);
    }
    frame.push_back('\n');
    sse_frame_ = std::move(frame);
  });
  return sse_frame_;
}

const std::string& Event::ws_object() const {
  std::call_once(ws_once_, [this] {
    std::string object;
    object.reserve(data_.size() + channel_.size() + id_text_.size() + type_.size() + 64);
    if (position_) {
      object += "{\"type\":\"position\",\"id\":";
      append_json_string(object, id_text_);
      object.push_back('}');
    } else if (control_) {
      // {"type":"gap", <fields>}
      object += "{\"type\":";
      append_json_string(object, type_);
      const std::string_view inner = std::string_view{data_}.substr(1, data_.size() - 2);
      if (!inner.empty()) {
        object.push_back(',');
        object.append(inner);
      }
      if (!id_text_.empty()) {
        object += ",\"id\":";
        append_json_string(object, id_text_);
      }
      object.push_back('}');
    } else {
      object += "{\"type\":\"event\"";
      if (!id_text_.empty()) {
        object += ",\"id\":";
        append_json_string(object, id_text_);
      }
      object += ",\"channel\":";
      append_json_string(object, channel_);
      object += ",\"event\":";
      append_json_string(object, type_);
      object += ",\"data\":";
      if (data_is_json_) {
        object.append(data_);
      } else {
        append_json_string(object, data_);
      }
      object.push_back('}');
    }
    ws_object_ = std::move(object);
  });
  return ws_object_;
}

}  // namespace sessionstream
