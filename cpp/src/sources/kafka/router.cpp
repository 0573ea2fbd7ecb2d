#include <algorithm>
#include <charconv>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/kafka/router.hpp"

namespace sessionstream::kafka {

const char* to_string(SkipKind kind) noexcept {
  switch (kind) {
    case SkipKind::bad_json:
      return "bad_json";
    case SkipKind::missing_key:
      return "missing_key";
    case SkipKind::missing_header:
      return "missing_header";
    case SkipKind::missing_field:
      return "missing_field";
    case SkipKind::invalid_channel:
      return "invalid_channel";
    case SkipKind::invalid_type:
      return "invalid_type";
    case SkipKind::too_large:
      return "too_large";
    case SkipKind::invalid_utf8:
      return "invalid_utf8";
  }
  return "unknown";
}

PayloadFormat parse_payload_format(std::string_view text) {
  if (text == "auto") return PayloadFormat::auto_detect;
  if (text == "json") return PayloadFormat::json;
  if (text == "text") return PayloadFormat::text;
  throw InvalidArgument("payload format '" + utf8_excerpt(text, 40) +
                        "' is invalid: use 'auto', 'json' or 'text'");
}

const char* to_string(PayloadFormat format) noexcept {
  switch (format) {
    case PayloadFormat::auto_detect:
      return "auto";
    case PayloadFormat::json:
      return "json";
    case PayloadFormat::text:
      return "text";
  }
  return "auto";
}

namespace json {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool document() {
    skip_ws();
    if (!value(0)) return false;
    skip_ws();
    return pos_ == text_.size();
  }

  // Positioned at a value: finds path inside it and stores the scalar.
  std::optional<std::string> find(const std::vector<std::string>& path, std::size_t depth) {
    skip_ws();
    if (depth == path.size()) return scalar();
    if (peek() != '{') return std::nullopt;
    ++pos_;
    skip_ws();
    if (peek() == '}') return std::nullopt;
    while (true) {
      skip_ws();
      std::string key;
      if (!string(&key)) return std::nullopt;
      skip_ws();
      if (peek() != ':') return std::nullopt;
      ++pos_;
      skip_ws();
      if (key == path[depth]) return find(path, depth + 1);
      if (!value(0)) return std::nullopt;
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      return std::nullopt;
    }
  }

 private:
  static constexpr int kMaxDepth = 128;

  [[nodiscard]] char peek() const noexcept { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool value(int depth) {
    if (depth > kMaxDepth) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string(nullptr);
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

  bool object(int depth) {
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      skip_ws();
      if (!string(nullptr)) return false;
      skip_ws();
      if (peek() != ':') return false;
      ++pos_;
      skip_ws();
      if (!value(depth + 1)) return false;
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  bool array(int depth) {
    ++pos_;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      skip_ws();
      if (!value(depth + 1)) return false;
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(unsigned& out) {
    if (pos_ + 4 > text_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex(text_[pos_++]);
      if (h < 0) return false;
      out = out * 16 + static_cast<unsigned>(h);
    }
    return true;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Control characters are rejected; invalid UTF-8 is left for the browser to replace.
  bool string(std::string* out) {
    if (peek() != '"') return false;
    ++pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return false;
      const char e = text_[pos_++];
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            unsigned low = 0;
            if (!hex4(low)) return false;
            if (low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
          }
          if (out) append_utf8(*out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out) out->push_back(plain);
    }
    return false;
  }

  bool digits() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool number() {
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (!digits()) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) return false;
    }
    return true;
  }

  std::optional<std::string> scalar() {
    const std::size_t start = pos_;
    switch (peek()) {
      case '"': {
        std::string out;
        if (!string(&out)) return std::nullopt;
        return out;
      }
      case 't':
      case 'f':
        if (!value(0)) return std::nullopt;
        return std::string{text_.substr(start, pos_ - start)};
      case '{':
      case '[':
      case 'n':
        return std::nullopt;
      default:
        if (!number()) return std::nullopt;
        return std::string{text_.substr(start, pos_ - start)};
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

bool valid(std::string_view text) noexcept {
  try {
    return Scanner{text}.document();
  } catch (...) {
    return false;
  }
}

std::optional<std::string> scalar_at(std::string_view text, const std::vector<std::string>& path) {
  return Scanner{text}.find(path, 0);
}

}  // namespace json

namespace {

const char* kPlaceholders = "{topic}, {partition}, {key}, {header:NAME}, {json:PATH}";

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    const auto dot = path.find('.', pos);
    out.emplace_back(path.substr(pos, dot == std::string_view::npos ? dot : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return out;
}

}  // namespace

Template Template::parse(std::string_view text, const std::vector<std::string>& extra_names) {
  Template t;
  t.text_ = std::string{text};
  std::string literal;
  const auto flush = [&] {
    if (!literal.empty()) t.segments_.push_back({Part::literal, std::move(literal), {}});
    literal.clear();
  };
  const auto fail = [&](const std::string& why) {
    std::string names = kPlaceholders;
    for (const auto& name : extra_names) names += ", {" + name + "}";
    throw InvalidArgument("template '" + utf8_excerpt(text, 120) + "': " + why +
                          "; placeholders are " + names + " (\"{{\" and \"}}\" for braces)");
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal.push_back('}');
        ++i;
        continue;
      }
      fail("unmatched '}' at position " + std::to_string(i));
    }
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal.push_back('{');
      ++i;
      continue;
    }
    const auto close = text.find('}', i);
    if (close == std::string_view::npos) fail("unclosed '{' at position " + std::to_string(i));
    const std::string_view name = text.substr(i + 1, close - i - 1);
    i = close;
    flush();
    if (name == "topic") {
      t.segments_.push_back({Part::topic, {}, {}});
    } else if (name == "partition") {
      t.segments_.push_back({Part::partition, {}, {}});
    } else if (name == "key") {
      t.segments_.push_back({Part::key, {}, {}});
      t.uses_key_ = true;
    } else if (name.starts_with("header:") && name.size() > 7) {
      t.segments_.push_back({Part::header, std::string{name.substr(7)}, {}});
    } else if (name.starts_with("json:") && name.size() > 5) {
      auto path = split_path(name.substr(5));
      if (std::any_of(path.begin(), path.end(), [](const auto& p) { return p.empty(); })) {
        fail("empty key in {" + std::string{name} + "}");
      }
      t.segments_.push_back({Part::json, {}, std::move(path)});
      t.uses_json_ = true;
    } else if (std::find(extra_names.begin(), extra_names.end(), name) != extra_names.end()) {
      t.segments_.push_back({Part::var, std::string{name}, {}});
    } else {
      fail("unknown placeholder {" + std::string{name} + "}");
    }
  }
  flush();
  if (t.segments_.empty()) fail("renders to an empty text");
  return t;
}

bool Template::is_literal() const noexcept {
  return std::all_of(segments_.begin(), segments_.end(),
                     [](const Segment& s) { return s.part == Part::literal; });
}

std::optional<SkipKind> Template::render(const RecordView& record,
                                         std::optional<std::string_view> json,
                                         const TemplateVars& vars, std::string& out) const {
  out.clear();
  for (const auto& segment : segments_) {
    switch (segment.part) {
      case Part::literal:
        out += segment.text;
        break;
      case Part::topic:
        out += record.topic;
        break;
      case Part::partition:
        out += std::to_string(record.partition);
        break;
      case Part::key:
        if (!record.key || record.key->empty()) return SkipKind::missing_key;
        out += *record.key;
        break;
      case Part::header: {
        // The last header of a name wins, as in Kafka's own lastHeader().
        const RecordHeader* found = nullptr;
        for (const auto& header : record.headers) {
          if (header.name == segment.text) found = &header;
        }
        if (found == nullptr || !found->value || found->value->empty()) {
          return SkipKind::missing_header;
        }
        out += *found->value;
        break;
      }
      case Part::json: {
        if (!json) return SkipKind::bad_json;
        const auto value = json::scalar_at(*json, segment.path);
        if (!value || value->empty()) return SkipKind::missing_field;
        out += *value;
        break;
      }
      case Part::var: {
        const auto it = std::find_if(vars.begin(), vars.end(),
                                     [&](const auto& kv) { return kv.first == segment.text; });
        if (it != vars.end()) out += it->second;
        break;
      }
    }
  }
  return std::nullopt;
}

Router::Router(std::string_view channel_template, std::string_view type_template,
               PayloadFormat format, const std::vector<std::string>& extra_names)
    : channel_(Template::parse(channel_template, extra_names)),
      type_(Template::parse(type_template, extra_names)),
      format_(format) {}

std::variant<RoutedRecord, Skip> Router::route(const RecordView& record,
                                               const TemplateVars& vars) const {
  const bool need_json =
      format_ != PayloadFormat::text || channel_.uses_json() || type_.uses_json();
  const bool is_json = need_json && json::valid(record.value);
  if (!is_json && (format_ == PayloadFormat::json || channel_.uses_json() || type_.uses_json())) {
    return Skip{SkipKind::bad_json,
                "payload of " + std::to_string(record.value.size()) + " bytes is not valid JSON"};
  }
  const std::optional<std::string_view> json =
      is_json ? std::optional<std::string_view>{record.value} : std::nullopt;
  RoutedRecord routed;
  if (const auto skip = channel_.render(record, json, vars, routed.channel)) {
    return Skip{*skip, std::string{"channel template '"} + channel_.text() + "'"};
  }
  if (const auto skip = type_.render(record, json, vars, routed.type)) {
    return Skip{*skip, std::string{"event type template '"} + type_.text() + "'"};
  }
  routed.json = is_json && format_ != PayloadFormat::text;
  return routed;
}

std::variant<EventPtr, Skip> publish_routed(Hub& hub, RoutedRecord routed, std::string_view value) {
  const HubConfig& config = hub.config();
  // The hub's channel rule, checked here so a bad channel is named as such.
  if (routed.channel.empty() || routed.channel.size() > config.max_channel_name ||
      !std::all_of(routed.channel.begin(), routed.channel.end(),
                   [](char c) { return c > 0x20 && c < 0x7F; })) {
    return Skip{SkipKind::invalid_channel, "channel '" + utf8_excerpt(routed.channel, 80) + "'"};
  }
  if (value.size() > config.max_event_bytes) {
    return Skip{SkipKind::too_large, std::to_string(value.size()) + " bytes"};
  }
  try {
    return hub.publish(routed.channel, std::string{value}, std::move(routed.type), routed.json);
  } catch (const InvalidUtf8& e) {
    return Skip{e.field() == "data" ? SkipKind::invalid_utf8 : SkipKind::invalid_type, e.what()};
  } catch (const InvalidArgument& e) {
    return Skip{SkipKind::invalid_type, e.what()};
  } catch (const PayloadTooLarge& e) {
    return Skip{SkipKind::too_large, e.what()};
  }
}

}  // namespace sessionstream::kafka
