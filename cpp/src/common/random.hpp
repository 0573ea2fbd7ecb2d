#pragma once

#include <cstddef>
#include <cstdint>

namespace sessionstream::detail {

// Fills buffer from the kernel's secure random source; throws on failure.
void secure_random(void* buffer, std::size_t size);

}  // namespace sessionstream::detail
