// The path of the cgroup a process ran in, from the cgroup id the socket
// tracing programs read (bpf_get_current_cgroup_id: the cgroup v2 id).
//
// With a cgroup2 mount (cgroup v2, or v1 with the unified hierarchy mounted
// beside it, as systemd's hybrid mode does), the id names a directory of
// that mount: the path is found by walking the mount for the directory whose
// inode number is the id. Without one (cgroup v1 only) the id says nothing
// (every process is in the unused v2 root), and the path is read from
// /proc/PID/cgroup instead, which only works while the process runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tcflows {

// Where the cgroup2 file system is mounted, from /proc/self/mountinfo's text.
std::optional<std::string> cgroup2_mount(std::string_view mountinfo);

// A process's cgroup path from its /proc/PID/cgroup text: the v2 entry
// ("0::/path") when it has a real one, else that of the named systemd
// hierarchy, else the first hierarchy's.
std::optional<std::string> proc_cgroup_path(std::string_view text);

class CgroupPaths {
public:
  // Reads where cgroup2 is mounted; `root` overrides the mount (tests).
  explicit CgroupPaths(std::optional<std::string> root = std::nullopt);

  // The path of cgroup `id` ("/" the root), or of process `pid`'s cgroup
  // without a cgroup2 mount; "" when not found (the cgroup or the process
  // is gone).
  std::string resolve(uint64_t id, uint32_t pid);

private:
  void walk();

  std::optional<std::string> mount_;
  std::unordered_map<uint64_t, std::string> paths_;
  std::chrono::steady_clock::time_point last_walk_{};
};

} // namespace tcflows
