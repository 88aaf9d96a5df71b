// Where a recording keeps its maps and programs in bpffs, so that they
// outlive the agent: counting goes on while no agent runs (after SIGKILL or a
// crash), and a restarted `tcflows record` on the same interfaces adopts them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tcflows {

inline constexpr const char *bpffs_root = "/sys/fs/bpf";
inline constexpr const char *pin_root = "/sys/fs/bpf/tcflows";

// Mounts bpffs on /sys/fs/bpf when nothing is mounted there.
void ensure_bpffs();

// The pin directory of a recording on these interfaces:
// /sys/fs/bpf/tcflows/<names sorted, joined by '+'>.
std::string pin_dir_for(const std::vector<std::string> &iface_names);

// The id of the program pinned as `name` ("ingress", "egress") in `dir`, 0 if none.
uint32_t pinned_prog_id(const std::string &dir, const std::string &name);

// max_entries of the map pinned as `name` in `dir`, 0 if none.
uint32_t pinned_map_size(const std::string &dir, const std::string &name);

// Pins a loaded program as `name` in `dir`, replacing an older pin.
void pin_program(int prog_fd, const std::string &dir, const std::string &name);

// An agent that adopts a recording pins its programs under staged names
// ("ingress_next": bpffs refuses dots) until it has swapped them into the
// filters: up to then the pins name the programs the filters run, so a start
// that fails leaves the recording adoptable. The staged name of a pin:
std::string staged(const std::string &name);
// Renames the staged program pins in `dir` to their names (replacing the
// old ones); a rename, so it needs no BPF rights.
void commit_staged_pins(const std::string &dir);
// Removes the staged program pins in `dir`, leaving the rest.
void remove_staged_pins(const std::string &dir);

// Removes every pin in `dir` and the directory. Returns false (and warns) when
// something could not be removed.
bool remove_pin_dir(const std::string &dir);

// Every pin directory under /sys/fs/bpf/tcflows.
std::vector<std::string> pin_dirs();

} // namespace tcflows
