#include "attach/rtnl.h"

#include "util/error.h"

#include <libmnl/libmnl.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <ctime>
#include <memory>

namespace tcflows {
namespace {

struct SocketClose {
  void operator()(mnl_socket *socket) const { mnl_socket_close(socket); }
};

int on_bpf_option(const nlattr *attr, void *data) {
  auto *filter = static_cast<TcFilter *>(data);
  if (mnl_attr_get_type(attr) == TCA_BPF_NAME)
    filter->bpf_name = mnl_attr_get_str(attr);
  else if (mnl_attr_get_type(attr) == TCA_BPF_ID)
    filter->bpf_prog_id = mnl_attr_get_u32(attr);
  return MNL_CB_OK;
}

int on_filter_attr(const nlattr *attr, void *data) {
  auto *filter = static_cast<TcFilter *>(data);
  if (mnl_attr_get_type(attr) == TCA_KIND)
    filter->kind = mnl_attr_get_str(attr);
  else if (mnl_attr_get_type(attr) == TCA_OPTIONS)
    mnl_attr_parse_nested(attr, on_bpf_option, filter);
  return MNL_CB_OK;
}

int on_filter(const nlmsghdr *message, void *data) {
  auto *filters = static_cast<std::vector<TcFilter> *>(data);
  const auto *tc = static_cast<const tcmsg *>(mnl_nlmsg_get_payload(message));
  if (tc->tcm_handle == 0) // the classifier instance itself, not a filter
    return MNL_CB_OK;
  TcFilter filter;
  filter.priority = TC_H_MAJ(tc->tcm_info) >> 16;
  filter.handle = tc->tcm_handle;
  mnl_attr_parse(message, sizeof(*tc), on_filter_attr, &filter);
  if (filter.kind != "bpf")
    filter.bpf_name.clear();
  filters->push_back(std::move(filter));
  return MNL_CB_OK;
}

} // namespace

std::vector<TcFilter> list_tc_filters(int ifindex, bool ingress) {
  std::unique_ptr<mnl_socket, SocketClose> socket(mnl_socket_open(NETLINK_ROUTE));
  if (!socket || mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0)
    fail(exit_failure, "cannot open rtnetlink: {}", errno_text(errno));

  char buffer[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr *request = mnl_nlmsg_put_header(buffer);
  request->nlmsg_type = RTM_GETTFILTER;
  request->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto *tc = static_cast<tcmsg *>(mnl_nlmsg_put_extra_header(request, sizeof(tcmsg)));
  tc->tcm_family = AF_UNSPEC;
  tc->tcm_ifindex = ifindex;
  tc->tcm_parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
  if (mnl_socket_sendto(socket.get(), request, request->nlmsg_len) < 0)
    fail(exit_failure, "rtnetlink request failed: {}", errno_text(errno));

  std::vector<TcFilter> filters;
  uint32_t port = mnl_socket_get_portid(socket.get());
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket.get(), buffer, sizeof(buffer));
    if (n < 0)
      fail(exit_failure, "rtnetlink receive failed: {}", errno_text(errno));
    int ret = mnl_cb_run(buffer, n, request->nlmsg_seq, port, on_filter, &filters);
    if (ret == MNL_CB_STOP)
      break;
    if (ret < 0) {
      // No clsact qdisc (or no such hook) means no filters.
      if (errno == EINVAL || errno == ENOENT)
        return {};
      fail(exit_failure, "listing TC filters failed: {}", errno_text(errno));
    }
  }
  return filters;
}

} // namespace tcflows
