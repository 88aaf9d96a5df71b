#include "iface_lock.h"

#include "error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace tcflows {
namespace fs = std::filesystem;

InterfaceLock::InterfaceLock(const std::string &iface)
    : path_(std::string(run_dir) + "/" + iface + ".lock"),
      qdisc_path_(std::string(run_dir) + "/" + iface + ".qdisc") {
  ::mkdir(run_dir, 0750);
  fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!fd_)
    fail(exit_failure, "cannot open {}: {}", path_, errno_text(errno));
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    std::string pid;
    std::ifstream(path_) >> pid;
    fail(exit_failure, "another tcflows record{} is recording on {}: stop it first",
         pid.empty() ? "" : " (pid " + pid + ")", iface);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0 || ::pwrite(fd_.get(), pid.data(), pid.size(), 0) < 0)
    fail(exit_failure, "cannot write {}: {}", path_, errno_text(errno));
}

bool InterfaceLock::qdisc_created() const { return fs::exists(qdisc_path_); }

void InterfaceLock::set_qdisc_created(bool created) {
  std::error_code ignored;
  if (!created)
    fs::remove(qdisc_path_, ignored);
  else
    std::ofstream(qdisc_path_) << "tcflows created the clsact qdisc\n";
}

void InterfaceLock::remove() {
  std::error_code ignored;
  fs::remove(qdisc_path_, ignored);
  fs::remove(path_, ignored);
}

} // namespace tcflows
