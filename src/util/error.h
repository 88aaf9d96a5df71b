// Fatal errors: a one-line message for the user and the exit code to leave with.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tcflows {

// Exit codes: 1 when the environment fails us, 2 when the user's input is wrong.
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

class Fatal : public std::runtime_error {
public:
  Fatal(int exit_code, const std::string &message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

private:
  int exit_code_;
};

// Throws a Fatal with a formatted message.
template <typename... Args>
[[noreturn]] void fail(int exit_code, fmt::format_string<Args...> format, Args &&...args) {
  throw Fatal(exit_code, fmt::format(format, std::forward<Args>(args)...));
}

// strerror for a negative or positive errno value.
std::string errno_text(int err);

} // namespace tcflows
