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

// One side's health field: its name after "orig_" or "resp_", its member,
// and whether it describes round trips (none without a sample).
struct TcpHealthField {
  std::string_view name;
  uint64_t TcpHealth::*member;
  bool rtt;
};
constexpr std::array<TcpHealthField, tcp_health_count / 2> tcp_health_fields{{
    {"retx_pkts", &TcpHealth::retx_pkts, false},
    {"retx_bytes", &TcpHealth::retx_bytes, false},
    {"ooo_pkts", &TcpHealth::ooo_pkts, false},
    {"zero_windows", &TcpHealth::zero_windows, false},
    {"rtt_samples", &TcpHealth::rtt_samples, false},
    {"rtt_min_ns", &TcpHealth::rtt_min_ns, true},
    {"rtt_mean_ns", &TcpHealth::rtt_mean_ns, true},
    {"rtt_max_ns", &TcpHealth::rtt_max_ns, true},
}};

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

const std::array<std::string, tcp_health_count> &tcp_health_columns() {
  static const auto columns = [] {
    std::array<std::string, tcp_health_count> names;
    size_t i = 0;
    for (std::string_view side : {"orig_", "resp_"})
      for (const auto &field : tcp_health_fields)
        names[i++] = std::string(side) + std::string(field.name);
    return names;
  }();
  return columns;
}

std::array<std::optional<uint64_t>, tcp_health_count> tcp_health_values(const ConnRecord &r) {
  std::array<std::optional<uint64_t>, tcp_health_count> values;
  size_t i = 0;
  for (const auto *side : {&r.orig_tcp, &r.resp_tcp})
    for (const auto &field : tcp_health_fields) {
      if (*side && !(field.rtt && !(*side)->rtt_samples))
        values[i] = (**side).*field.member;
      i++;
    }
  return values;
}

} // namespace tcflows
