#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sessionstream {

// Position of an event in a hub: the epoch names the process lifetime that
// assigned it, the sequence orders every event the hub published in that
// epoch. Text form: "<epoch hex>-<seq decimal>".
struct EventId {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;

  [[nodiscard]] std::string to_string() const;
  // Returns nullopt for anything that is not exactly the text form.
  [[nodiscard]] static std::optional<EventId> parse(std::string_view text);

  friend bool operator==(const EventId&, const EventId&) = default;
};

// One published event, allocated once and shared immutably by every receiver.
// Its SSE and WebSocket framings are computed on first use and reused for all
// receivers; computing them is thread-safe.
class Event {
 public:
  using Clock = std::chrono::system_clock;

  Event(std::string channel, EventId id, std::string type, std::string data, bool data_is_json,
        Clock::time_point timestamp = Clock::now());

  // A frame generated for one receiver (gap, reset, close): no event id unless
  // sse_id is given, and its WebSocket object has "type":<type> with the
  // given JSON object fields. json_fields is the inside of a JSON object.
  [[nodiscard]] static std::shared_ptr<const Event> control(std::string type,
                                                            std::string json_fields,
                                                            std::string sse_id = {});

  // A live event without an id: not kept in history, not resumable, and its
  // SSE frame leaves the client's last event id where it was.
  [[nodiscard]] static std::shared_ptr<const Event> transient(std::string channel, std::string type,
                                                              std::string data, bool data_is_json);

  // Only an id: sets an SSE client's last event id without dispatching an
  // event ("id: <id>\n\n"); {"type":"position","id":...} over WebSocket.
  [[nodiscard]] static std::shared_ptr<const Event> position(std::string id);

  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  [[nodiscard]] const std::string& channel() const noexcept { return channel_; }
  [[nodiscard]] const EventId& id() const noexcept { return id_; }
  [[nodiscard]] const std::string& id_text() const noexcept { return id_text_; }
  [[nodiscard]] const std::string& type() const noexcept { return type_; }
  [[nodiscard]] const std::string& data() const noexcept { return data_; }
  [[nodiscard]] bool data_is_json() const noexcept { return data_is_json_; }
  [[nodiscard]] bool is_control() const noexcept { return control_; }
  [[nodiscard]] Clock::time_point timestamp() const noexcept { return timestamp_; }

  // "id: ...\nevent: ...\ndata: ...\n\n"; every line of data gets its own
  // "data:" field so multi-line payloads survive.
  [[nodiscard]] const std::string& sse_frame() const;
  // {"type":"event","id":...,"channel":...,"event":...,"data":...}; data is
  // embedded as JSON when it is JSON, else as a JSON string.
  [[nodiscard]] const std::string& ws_object() const;

  // Bytes this event accounts for in a mailbox.
  [[nodiscard]] std::size_t cost_bytes() const noexcept {
    return control_ ? 0 : data_.size() + kOverheadBytes;
  }
  static constexpr std::size_t kOverheadBytes = 64;

 private:
  std::string channel_;
  EventId id_;
  std::string id_text_;
  std::string type_;
  std::string data_;
  bool data_is_json_;
  bool control_ = false;
  bool position_ = false;
  Clock::time_point timestamp_;

  mutable std::once_flag sse_once_;
  mutable std::string sse_frame_;
  mutable std::once_flag ws_once_;
  mutable std::string ws_object_;
};

using EventPtr = std::shared_ptr<const Event>;

// Appends text as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view text);

}  // namespace sessionstream
