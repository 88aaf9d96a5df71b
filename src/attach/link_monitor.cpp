#include "attach/link_monitor.h"

#include "util/error.h"
#include "util/log.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

namespace tcflows {
namespace {

int on_link_attr(const nlattr *attr, void *data) {
  if (mnl_attr_get_type(attr) == IFLA_IFNAME)
    *static_cast<std::string *>(data) = mnl_attr_get_str(attr);
  return MNL_CB_OK;
}

int on_message(const nlmsghdr *message, void *data) {
  auto *handler = static_cast<LinkMonitor::Handler *>(data);
  if (message->nlmsg_type != RTM_NEWLINK && message->nlmsg_type != RTM_DELLINK)
    return MNL_CB_OK;
  const auto *info = static_cast<const ifinfomsg *>(mnl_nlmsg_get_payload(message));
  LinkChange change{message->nlmsg_type == RTM_DELLINK, info->ifi_index, {}};
  mnl_attr_parse(message, sizeof(*info), on_link_attr, &change.name);
  (*handler)(change);
  return MNL_CB_OK;
}

} // namespace

void LinkMonitor::Close::operator()(mnl_socket *socket) const { mnl_socket_close(socket); }

LinkMonitor::LinkMonitor(boost::asio::io_context &io, Handler handler)
    : handler_(std::move(handler)), socket_(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK)),
      descriptor_(io) {
  if (!socket_ || mnl_socket_bind(socket_.get(), RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0)
    fail(exit_failure, "cannot listen for interface changes: {}", errno_text(errno));
  int fd = fcntl(mnl_socket_get_fd(socket_.get()), F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    fail(exit_failure, "cannot duplicate the rtnetlink fd: {}", errno_text(errno));
  descriptor_.assign(fd);
}

LinkMonitor::~LinkMonitor() = default;

void LinkMonitor::start() { wait(); }

void LinkMonitor::stop() {
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
}

void LinkMonitor::wait() {
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code &error) {
                           if (error)
                             return;
                           read();
                           wait();
                         });
}

void LinkMonitor::read() {
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == ENOBUFS) // notifications were lost: the next sweep of names catches up
        log::warn("interface notifications overflowed; some changes may be noticed late");
      return; // EAGAIN: all read
    }
    mnl_cb_run(buffer, n, 0, 0, on_message, &handler_);
  }
}

} // namespace tcflows
