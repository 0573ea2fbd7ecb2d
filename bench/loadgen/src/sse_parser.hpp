#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace loadgen {

// Incremental text/event-stream parser following the WHATWG dispatch rules:
// lines end in CRLF, LF or CR; ':' starts a comment; a blank line dispatches
// the event when its data buffer is non-empty; the id persists across events.
class SseParser {
 public:
  static constexpr std::size_t kMaxLine = 1 << 20;  // bounds memory on a broken stream

  // on_event(std::string_view type, std::string_view data); views are valid
  // only during the call. Returns false when a line exceeds kMaxLine.
  template <class OnEvent>
  bool feed(const char* p, std::size_t n, OnEvent&& on_event) {
    const char* end = p + n;
    if (skip_lf_ && p < end) {
      if (*p == '\n') ++p;
      skip_lf_ = false;
    }
    if (at_start_) {
      if (end - p >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
      at_start_ = p == end;
    }
    while (p < end) {
      const char* q = line_end(p, end);
      if (q == end) {
        if (line_.size() + static_cast<std::size_t>(end - p) > kMaxLine) return false;
        line_.append(p, end);
        break;
      }
      if (line_.empty()) {
        line(std::string_view(p, static_cast<std::size_t>(q - p)), on_event);
      } else {
        line_.append(p, q);
        line(line_, on_event);
        line_.clear();
      }
      if (*q == '\r') {
        if (q + 1 < end) {
          if (q[1] == '\n') ++q;
        } else {
          skip_lf_ = true;  // the LF of this CRLF may start the next read
        }
      }
      p = q + 1;
    }
    return true;
  }

  const std::string& last_id() const { return last_id_; }
  void set_last_id(std::string id) { last_id_ = std::move(id); }

  // A new connection: forget partial input, keep the last event id.
  void restart() {
    line_.clear();
    data_.clear();
    type_.clear();
    skip_lf_ = false;
    at_start_ = true;
  }

 private:
  template <class OnEvent>
  void line(std::string_view l, OnEvent& on_event) {
    if (l.empty()) {
      if (!data_.empty()) {
        data_.pop_back();  // the LF added after the last data line
        on_event(type_.empty() ? std::string_view("message") : std::string_view(type_),
                 std::string_view(data_));
      }
      data_.clear();
      type_.clear();
      return;
    }
    if (l.front() == ':') return;
    auto colon = l.find(':');
    std::string_view name = l.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = l.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (name == "data") {
      data_.append(value);
      data_.push_back('\n');
    } else if (name == "event") {
      type_.assign(value);
    } else if (name == "id") {
      if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
    }
    // "retry" and unknown fields are ignored, as a browser does.
  }

  // First CR or LF in [p, end), or end. memchr is vectorised; bare CR is rare.
  static const char* line_end(const char* p, const char* end) {
    auto lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* limit = lf ? lf : end;
    auto cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(limit - p)));
    return cr ? cr : limit;
  }

  std::string line_;  // an incomplete line carried to the next read
  std::string data_;
  std::string type_;
  std::string last_id_;
  bool skip_lf_ = false;
  bool at_start_ = true;
};

}  // namespace loadgen
