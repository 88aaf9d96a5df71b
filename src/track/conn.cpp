#include "track/conn.h"

#include <array>

namespace tcflows {
namespace {

constexpr std::array<std::string_view, 13> state_names{
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
};

constexpr std::array<std::string_view, 6> reason_names{"", "fin", "rst", "idle", "shutdown", "eof"};

} // namespace

std::string_view state_name(ConnState state) { return state_names[size_t(state)]; }

std::optional<ConnState> parse_state(std::string_view text) {
  for (size_t i = 0; i < state_names.size(); i++)
    if (state_names[i] == text)
      return ConnState(i);
  return std::nullopt;
}

std::string_view close_reason_name(CloseReason reason) { return reason_names[size_t(reason)]; }

std::optional<CloseReason> parse_close_reason(std::string_view text) {
  for (size_t i = 1; i < reason_names.size(); i++)
    if (reason_names[i] == text)
      return CloseReason(i);
  return std::nullopt;
}

} // namespace tcflows
