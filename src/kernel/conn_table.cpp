#include "kernel/conn_table.h"

#include "kernel/bpf_program.h"
#include "kernel/mapping.h"
#include "util/error.h"
#include "util/fd.h"

#include <bpf/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace tcflows {
namespace {

// Slots mapped at a time while scanning: the agent's memory holds one window
// (2 MiB), not the whole array.
constexpr uint32_t window_slots = 16384;
constexpr uint32_t slots_per_page = 4096 / sizeof(tcf_conn);

// An RCU grace period on request: updating an array of maps waits for every
// running BPF program to finish (the kernel's maybe_wait_bpf_programs).
class GracePeriod {
public:
  GracePeriod() {
    inner_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "tcflows_grace", 4, 4, 1, nullptr));
    LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = uint32_t(inner_.get()));
    if (inner_)
      outer_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "tcflows_sync", 4, 4, 1, &opts));
    if (!outer_)
      fail(exit_failure, "cannot create the map that waits for running programs: {}",
           errno_text(errno));
  }
  void wait() {
    uint32_t zero = 0, fd = uint32_t(inner_.get());
    if (bpf_map_update_elem(outer_.get(), &zero, &fd, BPF_ANY))
      fail(exit_failure, "waiting for running programs failed: {}", errno_text(errno));
  }

private:
  UniqueFd inner_;
  UniqueFd outer_;
};

class KernelConnTable final : public ConnTable {
public:
  explicit KernelConnTable(const BpfProgram &program)
      : conns_fd_(program.conns_fd()), free_fd_(program.free_slots_fd()),
        capacity_(program.kernel_config().slots), mask_(program.kernel_config().digest_mask),
        entries_(size_t(program.kernel_config().index_mask) + 1),
        pool_map_(program.pool_fd(), 0, 4096, "connection table"),
        index_map_(program.index_fd(), 0, std::max<size_t>(entries_ * sizeof(uint64_t), 4096),
                   "connection table") {}

  uint32_t capacity() const override { return capacity_; }
  uint32_t used() const override {
    return std::min(shared(const_cast<KernelConnTable *>(this)->pool().used).load(), capacity_);
  }

  void scan(const Visit &visit) override {
    uint32_t end = used();
    for (uint32_t first = 0; first < end; first += window_slots) {
      uint32_t count = std::min(window_slots, end - first);
      uint32_t pages = (count + slots_per_page - 1) / slots_per_page;
      Mapping window(conns_fd_, size_t(first) * sizeof(tcf_conn), size_t(pages) * 4096,
                     "connection table");
      visit(first, {static_cast<tcf_conn *>(window.get()), count});
    }
  }

  void with_slot(uint32_t index, const std::function<void(tcf_conn &)> &visit) override {
    if (index >= used())
      return;
    uint32_t page = index / slots_per_page;
    Mapping window(conns_fd_, size_t(page) * 4096, 4096, "connection table");
    visit(static_cast<tcf_conn *>(window.get())[index % slots_per_page]);
  }

  void synchronize() override { grace_.wait(); }

  std::span<uint64_t> index() override {
    return {static_cast<uint64_t *>(index_map_.get()), entries_};
  }
  uint64_t digest_mask() const override { return mask_; }

  void release(std::span<const uint32_t> slots) override {
    int64_t pushed = 0;
    for (uint32_t slot : slots)
      pushed += bpf_map_update_elem(free_fd_, nullptr, &slot, BPF_ANY) == 0;
    shared(pool().free).fetch_add(pushed);
  }

  tcf_pool &pool() override { return *static_cast<tcf_pool *>(pool_map_.get()); }

private:
  int conns_fd_, free_fd_;
  uint32_t capacity_;
  uint64_t mask_;
  size_t entries_;
  Mapping pool_map_;
  Mapping index_map_;
  GracePeriod grace_;
};

} // namespace

std::unique_ptr<ConnTable> kernel_conn_table(const BpfProgram &program) {
  return std::make_unique<KernelConnTable>(program);
}

} // namespace tcflows
