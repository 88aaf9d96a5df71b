// The socket tracing programs (bpf/proc.bpf.c): loaded and attached apart
// from the TC program, so that a kernel that refuses them records flows
// without process attribution.
#pragma once

#include "kernel/abi.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

struct tcflows_proc_bpf;

namespace tcflows {

using ProcCounters = std::array<uint64_t, TCF_PROC_CTR_MAX>;

class ProcProgram {
public:
  // Opens, sizes (`owners` entries), loads and attaches the programs. On any
  // failure: one line on the log and nullopt.
  static std::optional<ProcProgram> attach(uint32_t owners);

  ProcProgram(ProcProgram &&) noexcept;
  ProcProgram &operator=(ProcProgram &&) noexcept;
  ~ProcProgram();

  // The owner the programs wrote for `key`, if any.
  std::optional<tcf_proc_owner> lookup(const tcf_proc_key &key) const;
  // The programs' counters, summed over CPUs.
  ProcCounters counters() const;

private:
  struct Destroy {
    void operator()(tcflows_proc_bpf *skel) const;
  };
  explicit ProcProgram(std::unique_ptr<tcflows_proc_bpf, Destroy> skel);

  std::unique_ptr<tcflows_proc_bpf, Destroy> skel_;
};

} // namespace tcflows
