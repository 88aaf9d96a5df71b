#include "attach/left_recording.h"

#include "util/error.h"
#include "util/log.h"

#include <algorithm>

namespace tcflows {
namespace {

// The programs of tcflows' filters on both hooks of an interface.
std::vector<uint32_t> filter_programs(const Interface &iface, const TcOptions &options) {
  std::vector<uint32_t> ids;
  for (bool ingress : {true, false})
    if (uint32_t id = tcflows_filter_prog(iface.ifindex, ingress, options))
      ids.push_back(id);
  return ids;
}

bool named(const std::vector<Interface> &ifaces, const std::string &name) {
  return std::any_of(ifaces.begin(), ifaces.end(), [&](auto &i) { return i.name == name; });
}

// Joins one filter's program to what was found so far; its maps must be the same.
void join(std::optional<LeftRecording> &found, uint32_t prog_id, const std::string &iface,
          std::string &first_iface) {
  if (found &&
      std::find(found->prog_ids.begin(), found->prog_ids.end(), prog_id) != found->prog_ids.end())
    return;
  ProgramMaps maps = ProgramMaps::of_program(prog_id);
  if (!found) {
    found = LeftRecording{std::move(maps), {prog_id}};
    first_iface = iface;
    return;
  }
  if (!found->maps.same_maps(maps))
    fail(exit_failure,
         "{} and {} were recorded by two different tcflows agents that were killed: record them "
         "separately, or run `tcflows detach -i {}` to drop one",
         first_iface, iface, iface);
  found->prog_ids.push_back(prog_id);
}

// An interface outside `ifaces` whose tcflows filter counts into the same maps.
void refuse_partial(const LeftRecording &left, const std::vector<Interface> &ifaces,
                    const TcOptions &options) {
  for (const auto &other : all_interfaces()) {
    if (named(ifaces, other.name))
      continue;
    for (uint32_t id : filter_programs(other, options))
      if (ProgramMaps::of_program(id).same_maps(left.maps))
        fail(exit_usage,
             "the recording left attached also counts on {}: record on all its interfaces "
             "(add -i {}), or run `tcflows detach -i {}` first",
             other.name, other.name, other.name);
  }
}

} // namespace

std::optional<LeftRecording> find_left_recording(const std::vector<Interface> &ifaces,
                                                 const TcOptions &options) {
  std::optional<LeftRecording> found;
  std::string first_iface;
  for (const auto &iface : ifaces)
    for (uint32_t id : filter_programs(iface, options))
      join(found, id, iface.name, first_iface);
  if (found)
    refuse_partial(*found, ifaces, options);
  return found;
}

} // namespace tcflows
