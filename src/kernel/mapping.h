// A run of an mmapable BPF array (BPF_F_MMAPABLE) mapped into memory,
// unmapped when it goes.
#pragma once

#include "util/error.h"

#include <sys/mman.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>

namespace tcflows {

class Mapping {
public:
  // Maps `length` bytes of the map `fd` from `offset` (page multiples);
  // `what` names the map in the error.
  Mapping(int fd, size_t offset, size_t length, const char *what) : length_(length) {
    void *at = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset));
    if (at == MAP_FAILED)
      fail(exit_failure, "cannot map the {}: {}", what, errno_text(errno));
    at_ = at;
  }
  ~Mapping() { ::munmap(at_, length_); }
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  void *get() const { return at_; }

private:
  void *at_ = nullptr;
  size_t length_;
};

} // namespace tcflows
