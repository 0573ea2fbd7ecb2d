#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sessionstream/core/hub.hpp"

namespace sessionstream::kafka {

// Why a record was skipped rather than published.
enum class SkipKind : std::uint8_t {
  bad_json,         // the payload must be JSON (payload format or a {json:...} field) and is not
  missing_key,      // the template uses {key} and the record has none
  missing_header,   // the template uses {header:NAME} and the record lacks it
  missing_field,    // the template uses {json:PATH} and the payload has no scalar there
  invalid_channel,  // the rendered channel is not a valid channel name
  invalid_type,     // the rendered event type is not a valid event type
  too_large,        // the payload exceeds the hub's max_event_bytes
  invalid_utf8,     // the payload is not valid UTF-8 (frames are UTF-8 text)
};
inline constexpr std::size_t kSkipKinds = 8;
[[nodiscard]] const char* to_string(SkipKind kind) noexcept;
using SkipCounts = std::array<std::uint64_t, kSkipKinds>;

enum class PayloadFormat {
  auto_detect,  // JSON when the payload parses as JSON, text otherwise
  json,         // must be JSON; anything else is skipped as bad_json
  text,         // never embedded as JSON
};
[[nodiscard]] PayloadFormat parse_payload_format(std::string_view text);
[[nodiscard]] const char* to_string(PayloadFormat format) noexcept;

struct RecordHeader {
  std::string_view name;
  std::optional<std::string_view> value;  // nullopt: a header with a null value
};

// A Kafka record as routing sees it; views into memory the caller owns.
struct RecordView {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string_view> key;
  std::vector<RecordHeader> headers;
  std::string_view value;
};

// Values for placeholders that are not record fields ({session}, {domain}).
using TemplateVars = std::vector<std::pair<std::string, std::string>>;

// A text with placeholders: {topic}, {partition}, {key}, {header:NAME},
// {json:PATH} (PATH: dot-separated object keys) and any name given as an
// extra variable. "{{" and "}}" are literal braces. Immutable after parsing.
class Template {
 public:
  // Throws InvalidArgument naming the placeholder and the valid ones.
  static Template parse(std::string_view text, const std::vector<std::string>& extra_names = {});

  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool uses_json() const noexcept { return uses_json_; }
  [[nodiscard]] bool uses_key() const noexcept { return uses_key_; }
  [[nodiscard]] bool is_literal() const noexcept;

  // Renders into out; on failure returns the kind and leaves out unspecified.
  // json is the payload already validated as JSON, or nullopt when it is not.
  [[nodiscard]] std::optional<SkipKind> render(const RecordView& record,
                                               std::optional<std::string_view> json,
                                               const TemplateVars& vars, std::string& out) const;

 private:
  enum class Part { literal, topic, partition, key, header, json, var };
  struct Segment {
    Part part;
    std::string text;               // literal text, header name or variable name
    std::vector<std::string> path;  // json path
  };
  std::string text_;
  std::vector<Segment> segments_;
  bool uses_json_ = false;
  bool uses_key_ = false;
};

struct RoutedRecord {
  std::string channel;
  std::string type;
  bool json = false;
};

struct Skip {
  SkipKind kind;
  std::string detail;  // short, for the once-per-kind log line
};

// Maps records to (channel, event type, json flag). Immutable; thread-safe.
class Router {
 public:
  Router(std::string_view channel_template, std::string_view type_template, PayloadFormat format,
         const std::vector<std::string>& extra_names = {});

  [[nodiscard]] std::variant<RoutedRecord, Skip> route(const RecordView& record,
                                                       const TemplateVars& vars = {}) const;
  [[nodiscard]] const Template& channel_template() const noexcept { return channel_; }
  [[nodiscard]] const Template& type_template() const noexcept { return type_; }
  [[nodiscard]] PayloadFormat format() const noexcept { return format_; }

 private:
  Template channel_;
  Template type_;
  PayloadFormat format_;
};

// Publishes a routed record's value into the hub. What the hub would refuse
// comes back as a Skip of its kind (invalid_channel, invalid_type, too_large,
// invalid_utf8) rather than as an exception; Closed propagates.
[[nodiscard]] std::variant<EventPtr, Skip> publish_routed(Hub& hub, RoutedRecord routed,
                                                          std::string_view value);

// JSON helpers used by routing, exposed for tests.
namespace json {
// True when text is exactly one JSON value (RFC 8259), nesting at most 128 deep.
[[nodiscard]] bool valid(std::string_view text) noexcept;
// The scalar at path in a valid JSON document: strings unescaped, numbers and
// true/false as written. nullopt for a missing key, null, an object or an array.
[[nodiscard]] std::optional<std::string> scalar_at(std::string_view text,
                                                   const std::vector<std::string>& path);
}  // namespace json

}  // namespace sessionstream::kafka
