#include "util/log.h"

#include "util/error.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

namespace tcflows::log {
namespace {

Level current = Level::info;

int libbpf_print(enum libbpf_print_level, const char *format, va_list args) {
  if (current < Level::debug)
    return 0;
  char buffer[1024];
  int n = std::vsnprintf(buffer, sizeof(buffer), format, args);
  std::string_view text(buffer, n < 0 ? 0 : std::min<size_t>(n, sizeof(buffer) - 1));
  while (!text.empty() && text.back() == '\n')
    text.remove_suffix(1);
  write(Level::debug, fmt::format("libbpf: {}", text));
  return n;
}

} // namespace

void set_level(Level level) { current = level; }
Level level() { return current; }

void write(Level level, std::string_view message) {
  if (level > current)
    return;
  static constexpr const char *prefix[] = {"error: ", "warning: ", "", "debug: "};
  fmt::print(stderr, "tcflows: {}{}\n", prefix[static_cast<int>(level)], message);
}

void route_libbpf() { libbpf_set_print(libbpf_print); }

} // namespace tcflows::log

namespace tcflows {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

} // namespace tcflows
