#include "agent/cgroup.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace tcflows {
namespace {

namespace fs = std::filesystem;

// A cgroup missing from the paths known is looked for again at most this often.
constexpr std::chrono::seconds walk_gap{1};

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos)
      return parts;
    start = end + 1;
  }
}

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); i++) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      out.push_back(
          char((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

std::optional<std::string> cgroup2_mount(std::string_view mountinfo) {
  for (std::string_view line : split(mountinfo, '\n')) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos)
      continue;
    auto fields = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() >= 5 && !tail.empty() && tail[0] == "cgroup2")
      return unescape(fields[4]);
  }
  return std::nullopt;
}

std::optional<std::string> proc_cgroup_path(std::string_view text) {
  std::optional<std::string> v2, systemd, first;
  for (std::string_view line : split(text, '\n')) {
    // "HIERARCHY-ID:CONTROLLERS:PATH"; the path may hold colons.
    size_t a = line.find(':'), b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos)
      continue;
    std::string_view id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    std::string path(line.substr(b + 1));
    if (id == "0" && controllers.empty())
      v2 = path;
    else if (controllers == "name=systemd")
      systemd = path;
    else if (!first)
      first = path;
  }
  // A v1 system still lists the v2 root ("0::/"), which says nothing.
  if (v2 && (*v2 != "/" || (!systemd && !first)))
    return v2;
  return systemd ? systemd : first;
}

CgroupPaths::CgroupPaths(std::optional<std::string> root) : mount_(std::move(root)) {
  if (!mount_)
    mount_ = cgroup2_mount(read_file("/proc/self/mountinfo"));
}

std::string CgroupPaths::resolve(uint64_t id, uint32_t pid) {
  if (!mount_) {
    auto path = proc_cgroup_path(read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    return path.value_or("");
  }
  auto it = paths_.find(id);
  if (it == paths_.end() && std::chrono::steady_clock::now() - last_walk_ >= walk_gap) {
    walk();
    it = paths_.find(id);
  }
  return it != paths_.end() ? it->second : "";
}

// Every directory of the mount by inode number, which is the cgroup's id
// (kernfs node ids are inode numbers on 64-bit kernels).
void CgroupPaths::walk() {
  last_walk_ = std::chrono::steady_clock::now();
  paths_.clear();
  std::error_code error;
  struct stat st;
  if (::stat(mount_->c_str(), &st) == 0)
    paths_[st.st_ino] = "/";
  fs::recursive_directory_iterator it(*mount_, fs::directory_options::skip_permission_denied,
                                      error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_directory(error) || ::stat(it->path().c_str(), &st) != 0)
      continue;
    paths_[st.st_ino] = it->path().string().substr(mount_->size());
  }
}

} // namespace tcflows
