#pragma once

#include <string>
#include <string_view>

namespace sessionstream {

inline constexpr std::size_t kSessionIdMinLength = 8;
inline constexpr std::size_t kSessionIdMaxLength = 128;

// Browser session ids are 8 to 128 characters of [A-Za-z0-9_-]; anything else
// is rejected rather than cleaned up, so no id can smuggle a channel separator.
[[nodiscard]] bool is_valid_session_id(std::string_view id) noexcept;
// Throws InvalidArgument naming the value and the valid form.
void validate_session_id(std::string_view id);
// 32 characters from the kernel's secure random source (getrandom).
[[nodiscard]] std::string generate_session_id();

// "session:<id>": the one channel of a session that only it may open.
[[nodiscard]] std::string private_channel(std::string_view session_id);
// True when channel is some session's private channel other than session_id's.
[[nodiscard]] bool is_foreign_private_channel(std::string_view channel,
                                              std::string_view session_id) noexcept;

}  // namespace sessionstream
