// Human-readable summaries (per capture, verifier statistics), printed only
// with --summary so that a normal run stays quiet.
#pragma once

#include <fmt/format.h>

namespace tcflows::test {

extern bool summary_enabled;

template <typename... Args> void summary(fmt::format_string<Args...> f, Args &&...args) {
  if (summary_enabled)
    fmt::print("{}\n", fmt::format(f, std::forward<Args>(args)...));
}

} // namespace tcflows::test
