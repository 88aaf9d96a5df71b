#include "attach/attachments.h"

#include "util/error.h"
#include "util/log.h"

#include <net/if.h>

namespace tcflows {

Attachments::Attachments(Program program, const std::vector<Interface> &ifaces,
                         std::vector<InterfaceLock> &locks, Adoption adoption)
    : program_(program) {
  slots_.reserve(ifaces.size());
  try {
    for (size_t i = 0; i < ifaces.size(); i++) {
      slots_.push_back({ifaces[i].name, &locks[i], std::nullopt});
      adoption.qdisc_created = locks[i].qdisc_created();
      attach(slots_.back(), ifaces[i], adoption);
    }
  } catch (...) {
    for (auto &slot : slots_)
      if (slot.hook)
        slot.hook->keep_adopted();
    throw;
  }
}

void Attachments::attach(Slot &slot, const Interface &iface, const Adoption &adoption) {
  slot.hook.emplace(iface, program_.ingress_fd, program_.egress_fd, program_.options, adoption);
  slot.lock->set_qdisc_created(slot.hook->created_qdisc());
  names_[static_cast<uint32_t>(iface.ifindex)] = iface.name;
  if (iface.loopback)
    loopbacks_.insert(static_cast<uint32_t>(iface.ifindex));
  log::info("recording on {}", iface.name);
}

void Attachments::lose(Slot &slot) {
  slot.hook->forget();
  slot.hook.reset();
  slot.lock->set_qdisc_created(false);
  log::warn("{} disappeared: recording goes on elsewhere; tcflows re-attaches when it is back",
            slot.name);
}

void Attachments::on_link(const LinkChange &change) {
  for (auto &slot : slots_) {
    bool ours = slot.hook && slot.hook->iface().ifindex == change.ifindex;
    if (change.removed && ours)
      lose(slot);
    else if (!change.removed && !slot.hook && change.name == slot.name)
      reconcile();
  }
}

void Attachments::reconcile() {
  for (auto &slot : slots_) {
    int ifindex = static_cast<int>(if_nametoindex(slot.name.c_str()));
    if (slot.hook && slot.hook->iface().ifindex != ifindex)
      lose(slot);
    if (slot.hook || ifindex == 0)
      continue;
    try {
      attach(slot, resolve_interface(slot.name), {});
      log::info("{} is back: re-attached", slot.name);
    } catch (const Fatal &e) {
      log::warn("{} is back but cannot be attached yet: {}", slot.name, e.what());
    }
  }
}

void Attachments::detach_all() {
  for (auto &slot : slots_)
    slot.hook.reset();
}

std::string Attachments::name_of(uint32_t ifindex) const {
  auto it = names_.find(ifindex);
  return it != names_.end() ? it->second : interface_name(static_cast<int>(ifindex));
}

} // namespace tcflows
