// Logging to stderr, with libbpf's messages routed through it.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace tcflows::log {

enum class Level { error, warn, info, debug };

void set_level(Level level);
Level level();
void write(Level level, std::string_view message);

template <typename... Args> void error(fmt::format_string<Args...> f, Args &&...args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void warn(fmt::format_string<Args...> f, Args &&...args) {
  write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void info(fmt::format_string<Args...> f, Args &&...args) {
  write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args> void debug(fmt::format_string<Args...> f, Args &&...args) {
  if (level() >= Level::debug)
    write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

// Sends libbpf's output here: warnings as debug (shown with -v), never raw.
void route_libbpf();

} // namespace tcflows::log
