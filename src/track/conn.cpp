#include "track/conn.h"

#include <algorithm>
#include <cstring>

namespace tcflows {
namespace {

// In the order of the enums.
constexpr std::array<std::string_view, 13> state_names = {
    "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH",
};
static_assert(state_names.size() == size_t(ConnState::OTH) + 1);

constexpr std::array<std::string_view, 6> close_reason_names = {
    "", "fin", "rst", "idle", "shutdown", "eof",
};
static_assert(close_reason_names.size() == size_t(CloseReason::eof) + 1);

template <typename Enum, size_t N>
std::optional<Enum> find(const std::array<std::string_view, N> &names, std::string_view text) {
  auto it = std::find(names.begin(), names.end(), text);
  if (it == names.end())
    return std::nullopt;
  return static_cast<Enum>(it - names.begin());
}

} // namespace

std::string_view state_name(ConnState state) {
  auto index = static_cast<size_t>(state);
  return index < state_names.size() ? state_names[index] : "OTH";
}

std::optional<ConnState> parse_state(std::string_view text) {
  return find<ConnState>(state_names, text);
}

std::string_view close_reason_name(CloseReason reason) {
  auto index = static_cast<size_t>(reason);
  return index < close_reason_names.size() ? close_reason_names[index] : "";
}

std::optional<CloseReason> parse_close_reason(std::string_view text) {
  return find<CloseReason>(close_reason_names, text);
}

std::optional<Uid> Uid::from(std::string_view text) {
  if (text.empty() || text.size() > capacity)
    return std::nullopt;
  Uid uid;
  std::memcpy(uid.chars.data(), text.data(), text.size());
  return uid;
}

} // namespace tcflows
