#include "kernel/pins.h"

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <filesystem>

namespace tcflows {
namespace fs = std::filesystem;

void ensure_bpffs() {
  struct statfs info {};
  if (::statfs(bpffs_root, &info) == 0 && info.f_type == BPF_FS_MAGIC)
    return;
  if (::mount("bpf", bpffs_root, "bpf", 0, "mode=0700") != 0)
    fail(exit_failure, "cannot mount bpffs on {}: {} (mount it: mount -t bpf bpf {})", bpffs_root,
         errno_text(errno), bpffs_root);
}

std::string pin_dir_for(const std::vector<std::string> &iface_names) {
  std::vector<std::string> names = iface_names;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string joined;
  for (const auto &name : names)
    joined += (joined.empty() ? "" : "+") + name;
  return std::string(pin_root) + "/" + joined;
}

namespace {

// bpf_prog_info or bpf_map_info of the object pinned as `name` in `dir`,
// value-initialised (id and sizes 0) when nothing is pinned there.
template <typename Info> Info pinned_info(const std::string &dir, const std::string &name) {
  Info info{};
  UniqueFd fd(bpf_obj_get((dir + "/" + name).c_str()));
  uint32_t len = sizeof(info);
  if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len))
    return Info{};
  return info;
}

} // namespace

uint32_t pinned_prog_id(const std::string &dir, const std::string &name) {
  return pinned_info<bpf_prog_info>(dir, name).id;
}

uint32_t pinned_map_size(const std::string &dir, const std::string &name) {
  return pinned_info<bpf_map_info>(dir, name).max_entries;
}

void pin_program(int prog_fd, const std::string &dir, const std::string &name) {
  std::string path = dir + "/" + name;
  std::error_code ignored;
  fs::create_directories(dir, ignored);
  fs::remove(path, ignored);
  if (bpf_obj_pin(prog_fd, path.c_str()))
    fail(exit_failure, "cannot pin the program at {}: {}", path, errno_text(errno));
}

std::string staged(const std::string &name) { return name + "_next"; }

void commit_staged_pins(const std::string &dir) {
  for (const char *name : {"ingress", "egress"}) {
    std::string from = dir + "/" + staged(name), to = dir + "/" + name;
    std::error_code error;
    if (fs::exists(from, error))
      fs::rename(from, to, error);
    if (error)
      log::warn("cannot rename {} to {}: {}; a restart after a crash may not adopt the counts",
                from, to, error.message());
  }
}

void remove_staged_pins(const std::string &dir) {
  std::error_code ignored;
  for (const char *name : {"ingress", "egress"})
    fs::remove(dir + "/" + staged(name), ignored);
}

bool remove_pin_dir(const std::string &dir) {
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(dir, error))
    if (!fs::remove(entry.path(), error))
      break;
  if (error && error != std::errc::no_such_file_or_directory) {
    log::warn("cannot remove the pins in {}: {}", dir, error.message());
    return false;
  }
  // An agent that switched users may lack the right to remove the (now
  // empty, harmless) directory itself; `tcflows detach` does that.
  if (!fs::remove(dir, error) && error && error != std::errc::permission_denied)
    log::debug("cannot remove {}: {}", dir, error.message());
  return true;
}

std::vector<std::string> pin_dirs() {
  std::vector<std::string> dirs;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(pin_root, error))
    if (entry.is_directory())
      dirs.push_back(entry.path());
  return dirs;
}

} // namespace tcflows
