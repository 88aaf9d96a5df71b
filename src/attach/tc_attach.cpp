#include "attach/tc_attach.h"

#include "attach/rtnl.h"
#include "util/error.h"
#include "util/log.h"

#include <algorithm>

namespace tcflows {
namespace {

bpf_tc_hook make_hook(int ifindex, bpf_tc_attach_point point) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = point;
  return hook;
}

bpf_tc_opts make_opts(const TcOptions &options, int prog_fd) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.prog_fd = prog_fd;
  opts.handle = options.handle;
  opts.priority = options.priority;
  return opts;
}

const char *hook_name(bpf_tc_attach_point point) {
  return point == BPF_TC_INGRESS ? "ingress" : "egress";
}

// Why an attach found its slot taken: a tcflows left running or killed, or someone else.
[[noreturn]] void fail_taken(const Interface &iface, bpf_tc_attach_point point,
                             const TcOptions &options) {
  for (const auto &filter : list_tc_filters(iface.ifindex, point == BPF_TC_INGRESS))
    if (filter.priority == options.priority && filter.handle == options.handle &&
        is_tcflows_filter_name(filter.bpf_name))
      fail(exit_failure,
           "tcflows is already attached to {} {}: another `tcflows record` runs there, or one "
           "was killed; stop it, or run `tcflows detach -i {}`",
           iface.name, hook_name(point), iface.name);
  fail(exit_failure,
       "TC priority {} handle {:#x} on {} {} is taken by another filter: choose a free one "
       "with --tc-priority",
       options.priority, options.handle, iface.name, hook_name(point));
}

void destroy_qdisc(int ifindex) {
  bpf_tc_hook hook = make_hook(ifindex, BPF_TC_INGRESS);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  bpf_tc_hook_destroy(&hook);
}

bool clsact_is_empty(int ifindex) {
  try {
    return list_tc_filters(ifindex, true).empty() && list_tc_filters(ifindex, false).empty();
  } catch (const Fatal &) {
    return false;
  }
}

} // namespace

int detach_tcflows_filters(int ifindex, bool remove_qdisc) {
  int removed = 0;
  for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    for (const auto &filter : list_tc_filters(ifindex, point == BPF_TC_INGRESS)) {
      if (!is_tcflows_filter_name(filter.bpf_name))
        continue;
      bpf_tc_hook hook = make_hook(ifindex, point);
      TcOptions options{filter.priority, filter.handle};
      bpf_tc_opts opts = make_opts(options, 0);
      if (bpf_tc_detach(&hook, &opts) == 0)
        removed++;
    }
  }
  if (remove_qdisc && clsact_is_empty(ifindex))
    destroy_qdisc(ifindex);
  return removed;
}

uint32_t tcflows_filter_prog(int ifindex, bool ingress, const TcOptions &options) {
  for (const auto &filter : list_tc_filters(ifindex, ingress))
    if (filter.priority == options.priority && filter.handle == options.handle &&
        is_tcflows_filter_name(filter.bpf_name))
      return filter.bpf_prog_id;
  return 0;
}

bool is_tcflows_filter_name(const std::string &bpf_name) {
  return bpf_name.starts_with("tcflows_ingress") || bpf_name.starts_with("tcflows_egress");
}

InterfaceHook::InterfaceHook(Interface iface, int ingress_fd, int egress_fd, TcOptions options,
                             const Adoption &adoption)
    : iface_(std::move(iface)), options_(options) {
  bpf_tc_hook hook = make_hook(iface_.ifindex, BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    fail(exit_failure,
         "cannot add a clsact qdisc to {}: {} (another ingress qdisc may hold the slot: see "
         "`tc qdisc show dev {}`)",
         iface_.name, errno_text(err), iface_.name);
  created_qdisc_ = !err || adoption.qdisc_created;
  try {
    attach(BPF_TC_INGRESS, ingress_fd, adoption);
    if (!iface_.loopback)
      attach(BPF_TC_EGRESS, egress_fd, adoption);
  } catch (...) {
    keep_adopted();
    detach_all();
    throw;
  }
  log::debug("attached to {} (ifindex {}){}", iface_.name, iface_.ifindex,
             created_qdisc_ ? ", clsact qdisc created" : "");
}

InterfaceHook::InterfaceHook(InterfaceHook &&other) noexcept
    : iface_(std::move(other.iface_)), options_(other.options_),
      created_qdisc_(other.created_qdisc_), attached_(std::move(other.attached_)),
      adopted_(std::move(other.adopted_)) {
  other.attached_.clear();
  other.adopted_.clear();
  other.created_qdisc_ = false;
}

InterfaceHook::~InterfaceHook() { detach_all(); }

void InterfaceHook::attach(bpf_tc_attach_point point, int prog_fd, const Adoption &adoption) {
  bpf_tc_hook hook = make_hook(iface_.ifindex, point);
  bpf_tc_opts opts = make_opts(options_, prog_fd);
  int err = bpf_tc_attach(&hook, &opts);
  uint32_t left =
      err == -EEXIST ? tcflows_filter_prog(iface_.ifindex, point == BPF_TC_INGRESS, options_) : 0;
  bool ours = std::find(adoption.prog_ids.begin(), adoption.prog_ids.end(), left) !=
              adoption.prog_ids.end();
  if (left && ours) {
    // Our own recording's filter, left by an agent that died: swap the
    // program in place (the maps are the same), so no packet goes uncounted.
    opts = make_opts(options_, prog_fd);
    opts.flags = BPF_TC_F_REPLACE;
    err = bpf_tc_attach(&hook, &opts);
    if (!err) {
      adopted_.push_back(point);
      log::info("adopted the recording on {} {}", iface_.name, hook_name(point));
    }
  }
  if (err == -EEXIST)
    fail_taken(iface_, point, options_);
  if (err)
    fail(exit_failure, "cannot attach to {} {}: {}", iface_.name, hook_name(point),
         errno_text(err));
  attached_.push_back(point);
}

void InterfaceHook::keep_adopted() noexcept {
  for (auto point : adopted_)
    attached_.erase(std::remove(attached_.begin(), attached_.end(), point), attached_.end());
  if (!adopted_.empty())
    created_qdisc_ = false; // the qdisc holds the filters kept
  adopted_.clear();
}

void InterfaceHook::detach_all() noexcept {
  for (auto point : attached_) {
    bpf_tc_hook hook = make_hook(iface_.ifindex, point);
    bpf_tc_opts opts = make_opts(options_, 0);
    opts.prog_fd = 0;
    int err = bpf_tc_detach(&hook, &opts);
    if (err && err != -ENOENT && err != -ENODEV)
      log::warn("detaching from {} {} failed: {}", iface_.name, hook_name(point), errno_text(err));
  }
  bool had_filters = !attached_.empty();
  attached_.clear();
  if (!created_qdisc_ || !had_filters)
    return;
  created_qdisc_ = false;
  // Remove the qdisc only if nobody else put a filter on it meanwhile.
  if (clsact_is_empty(iface_.ifindex))
    destroy_qdisc(iface_.ifindex);
}

} // namespace tcflows
