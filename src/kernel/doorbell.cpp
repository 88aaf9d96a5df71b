#include "kernel/doorbell.h"

#include "util/error.h"
#include "util/log.h"

#include <bpf/libbpf.h>
#include <fcntl.h>

namespace tcflows {

void Doorbell::Free::operator()(ring_buffer *rb) const { ring_buffer__free(rb); }

Doorbell::Doorbell(boost::asio::io_context &io, int map_fd, Handler handler)
    : handler_(std::move(handler)), ring_(ring_buffer__new(map_fd, on_sample, this, nullptr)),
      descriptor_(io) {
  if (!ring_)
    fail(exit_failure, "cannot open the doorbell ring buffer: {}", errno_text(errno));
  // A duplicate, so that Asio and libbpf never close the same fd.
  int fd = fcntl(ring_buffer__epoll_fd(ring_.get()), F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    fail(exit_failure, "cannot duplicate the ring buffer's epoll fd: {}", errno_text(errno));
  descriptor_.assign(fd);
}

Doorbell::~Doorbell() = default;

int Doorbell::on_sample(void *ctx, void *, size_t) {
  static_cast<Doorbell *>(ctx)->rung_++;
  return 0;
}

void Doorbell::start() { wait(); }

void Doorbell::stop() {
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
}

void Doorbell::wait() {
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code &error) {
                           if (error)
                             return;
                           uint64_t before = rung_;
                           int n = ring_buffer__consume(ring_.get());
                           if (n < 0)
                             log::warn("reading the doorbell failed: {}", errno_text(n));
                           if (rung_ != before)
                             handler_();
                           wait();
                         });
}

} // namespace tcflows
