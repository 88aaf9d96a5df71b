#include "kernel/program_maps.h"

#include "util/error.h"

#include <bpf/bpf.h>

#include <algorithm>

namespace tcflows {
namespace {

UniqueFd open_program(uint32_t prog_id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd && (errno == EPERM || errno == EACCES))
    fail(exit_failure,
         "cannot open the program of the tcflows filter left attached (id {}): adopting it "
         "needs CAP_SYS_ADMIN; run as root, or run `tcflows detach` to drop it",
         prog_id);
  if (!fd)
    fail(exit_failure, "cannot open the program of the tcflows filter left attached (id {}): {}",
         prog_id, errno_text(errno));
  return fd;
}

// The ids of the maps a program uses (bpf_prog_info asked twice: count, then ids).
std::vector<uint32_t> map_ids(int prog_fd, uint32_t prog_id) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
    fail(exit_failure, "cannot read program {}: {}", prog_id, errno_text(errno));
  std::vector<uint32_t> ids(info.nr_map_ids);
  info = bpf_prog_info{};
  info.nr_map_ids = static_cast<uint32_t>(ids.size());
  info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
    fail(exit_failure, "cannot read the maps of program {}: {}", prog_id, errno_text(errno));
  ids.resize(std::min<size_t>(ids.size(), info.nr_map_ids));
  return ids;
}

KernelMap open_map(uint32_t id) {
  KernelMap map;
  map.fd.reset(bpf_map_get_fd_by_id(id));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (!map.fd || bpf_obj_get_info_by_fd(map.fd.get(), &info, &len))
    fail(exit_failure, "cannot open map {} of the tcflows filter left attached: {}", id,
         errno_text(errno));
  map.name = info.name;
  map.id = info.id;
  map.type = info.type;
  map.key_size = info.key_size;
  map.value_size = info.value_size;
  map.max_entries = info.max_entries;
  return map;
}

// libbpf names the maps of global data ".rodata", ".bss", ... (in the kernel
// with the object's name in front): the only names with a dot.
bool is_internal(const KernelMap &map) { return map.name.find('.') != std::string::npos; }

} // namespace

ProgramMaps ProgramMaps::of_program(uint32_t prog_id) {
  UniqueFd prog = open_program(prog_id);
  ProgramMaps result;
  result.prog_id_ = prog_id;
  for (uint32_t id : map_ids(prog.get(), prog_id))
    result.maps_.push_back(open_map(id));
  return result;
}

const KernelMap *ProgramMaps::find(std::string_view name) const {
  auto it = std::find_if(maps_.begin(), maps_.end(), [&](auto &m) { return m.name == name; });
  return it != maps_.end() ? &*it : nullptr;
}

bool ProgramMaps::same_maps(const ProgramMaps &other) const {
  auto shared = [](const ProgramMaps &a, const ProgramMaps &b) {
    return std::all_of(a.maps_.begin(), a.maps_.end(), [&](const KernelMap &map) {
      const KernelMap *twin = b.find(map.name);
      return is_internal(map) || (twin && twin->id == map.id);
    });
  };
  return shared(*this, other) && shared(other, *this);
}

} // namespace tcflows
