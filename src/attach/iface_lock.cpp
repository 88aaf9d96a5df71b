#include "attach/iface_lock.h"

#include "attach/netif.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace tcflows {
namespace {

constexpr std::string_view qdisc_mark = "qdisc-created\n";

std::string read_all(int fd) {
  std::string text(256, '\0');
  ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? n : 0);
  return text;
}

} // namespace

std::string lock_file_name(const std::string &iface) {
  return "net" + std::to_string(netns_inode()) + "." + iface + ".lock";
}

InterfaceLock::InterfaceLock(const std::string &iface, const std::string &dir)
    : path_(dir + "/" + lock_file_name(iface)) {
  ::mkdir(dir.c_str(), 0750);
  fd_.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  made_ = static_cast<bool>(fd_);
  if (!fd_ && errno == EEXIST)
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd_)
    fail(exit_failure, "cannot open {}: {}", path_, errno_text(errno));
  std::string state = read_all(fd_.get());
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    std::string pid = state.substr(0, state.find('\n'));
    fail(exit_failure, "another tcflows record{} is recording on {}: stop it first",
         pid.empty() ? "" : " (pid " + pid + ")", iface);
  }
  qdisc_created_ = state.find(qdisc_mark) != std::string::npos;
}

InterfaceLock::~InterfaceLock() {
  if (fd_ && made_ && !claimed_)
    ::unlink(path_.c_str());
}

void InterfaceLock::claim() {
  claimed_ = true;
  write_state(qdisc_created_);
}

void InterfaceLock::set_qdisc_created(bool created) {
  qdisc_created_ = created;
  write_state(created);
}

void InterfaceLock::write_state(bool qdisc_created) {
  std::string state = std::to_string(::getpid()) + "\n";
  if (qdisc_created)
    state += qdisc_mark;
  if (::ftruncate(fd_.get(), 0) != 0 || ::pwrite(fd_.get(), state.data(), state.size(), 0) < 0)
    fail(exit_failure, "cannot write {}: {}", path_, errno_text(errno));
}

void InterfaceLock::release() {
  // Emptied through the fd; unlinking needs rights a --user agent lacks.
  if (::ftruncate(fd_.get(), 0) == 0)
    ::unlink(path_.c_str());
  fd_.reset();
}

} // namespace tcflows
