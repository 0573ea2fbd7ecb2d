#include "sessionstream/sessions/session_id.hpp"

#include <algorithm>
#include <array>

#include "common/random.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"

namespace sessionstream {

namespace {
constexpr std::string_view kPrivatePrefix = "session:";

bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}
}  // namespace

bool is_valid_session_id(std::string_view id) noexcept {
  return id.size() >= kSessionIdMinLength && id.size() <= kSessionIdMaxLength &&
         std::all_of(id.begin(), id.end(), is_id_char);
}

void validate_session_id(std::string_view id) {
  if (is_valid_session_id(id)) return;
  std::string shown = utf8_excerpt(id, 64);
  if (id.size() > 64) shown += "...";
  throw InvalidArgument("session id '" + shown + "' (" + std::to_string(id.size()) +
                        " characters) is invalid: use " + std::to_string(kSessionIdMinLength) +
                        "-" + std::to_string(kSessionIdMaxLength) +
                        " characters of A-Z a-z 0-9 - _");
}

std::string generate_session_id() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<unsigned char, 32> bytes{};
  detail::secure_random(bytes.data(), bytes.size());
  std::string id(bytes.size(), '\0');
  // 64 symbols: the low six bits of each byte are uniform.
  std::transform(bytes.begin(), bytes.end(), id.begin(),
                 [](unsigned char b) { return kAlphabet[b & 0x3F]; });
  return id;
}

std::string private_channel(std::string_view session_id) {
  return std::string{kPrivatePrefix} + std::string{session_id};
}

bool is_foreign_private_channel(std::string_view channel, std::string_view session_id) noexcept {
  return channel.starts_with(kPrivatePrefix) && channel.substr(kPrivatePrefix.size()) != session_id;
}

}  // namespace sessionstream
