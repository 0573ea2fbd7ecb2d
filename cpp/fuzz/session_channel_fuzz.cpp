// Session ids (cookie, header, query) and channel names (query, WebSocket
// subscribe) come from clients; validation must match its documented form
// and its error text must be valid UTF-8 whatever the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sessions/session_id.hpp"

namespace {

bool documented_session_id(std::string_view id) {
  if (id.size() < 8 || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool documented_channel(std::string_view channel, std::size_t max) {
  if (channel.empty() || channel.size() > max) return false;
  for (const char c : channel) {
    if (!(c > 0x20 && c < 0x7F)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sessionstream;
  const std::string_view text{reinterpret_cast<const char*>(data), size};

  const bool valid_id = is_valid_session_id(text);
  if (valid_id != documented_session_id(text)) std::abort();
  try {
    validate_session_id(text);
    if (!valid_id) std::abort();
  } catch (const InvalidArgument& e) {
    if (valid_id || !is_valid_utf8(e.what())) std::abort();
  }

  // The input split at its first byte: a session id and a channel.
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const std::string_view session = text.substr(0, cut);
  const std::string_view channel = text.substr(cut);
  const bool foreign = is_foreign_private_channel(channel, session);
  if (foreign && (!channel.starts_with("session:") || channel == private_channel(session))) {
    std::abort();
  }
  if (!foreign && channel.starts_with("session:") && channel != private_channel(session)) {
    std::abort();
  }

  constexpr std::size_t kMax = 64;
  try {
    Hub::validate_channel_name(text, kMax);
    if (!documented_channel(text, kMax)) std::abort();
  } catch (const InvalidArgument& e) {
    if (documented_channel(text, kMax) || !is_valid_utf8(e.what())) std::abort();
  }
  return 0;
}
