// connload: short TCP connections at the highest rate a single thread reaches,
// for tools/bench and the lab tests.
//
//   connload server --listen ADDR --port P [--request N] [--reply M] [--close MODE]
//   connload client --connect ADDR --port P (--count N | --duration D) [--concurrency C]
//                   [--bind ADDR]... [--request N] [--reply M] [--close MODE]
//
// Every connection: the client connects, sends --request bytes, reads --reply
// bytes, and the connection closes as --close says:
//   server  the server closes first (it keeps TIME_WAIT, the client's ports stay free)
//   client  the client closes first after the reply (the client keeps TIME_WAIT)
//   rst     the client aborts with a RST after the reply (SO_LINGER 0)
// The client keeps --concurrency connections in flight (one epoll loop) and
// stops starting new ones after --count attempts or --duration. Both sides
// print their exact totals as one JSON line on stdout: the client when its
// last connection ended, the server on SIGINT/SIGTERM or after --count
// completed connections. IPv4 or IPv6 follows the address given.
#include "util/fd.h"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using tcflows::UniqueFd;
using Clock = std::chrono::steady_clock;

enum class CloseMode { server, client, rst };

struct Options {
  std::string address;
  uint16_t port = 5001;
  std::vector<std::string> binds;
  unsigned concurrency = 64;
  uint64_t count = 0;
  double duration_s = 0;
  size_t request = 16;
  size_t reply = 16;
  CloseMode close = CloseMode::server;
  double timeout_s = 5;
  int backlog = 4096;
  std::string log_path;
};

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
};

[[noreturn]] void die(const std::string &message) { throw std::runtime_error(message); }

std::string errno_text(int err) { return std::strerror(err); }

Endpoint parse_endpoint(const std::string &host, uint16_t port) {
  Endpoint ep;
  auto *v4 = reinterpret_cast<sockaddr_in *>(&ep.addr);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ep.addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.len = sizeof(*v6);
  } else {
    die(fmt::format("'{}' is not a numeric IPv4 or IPv6 address", host));
  }
  return ep;
}

std::string address_text(const sockaddr_storage &addr, uint16_t *port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    auto *v4 = reinterpret_cast<const sockaddr_in *>(&addr);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    *port = ntohs(v4->sin_port);
  } else {
    auto *v6 = reinterpret_cast<const sockaddr_in6 *>(&addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    *port = ntohs(v6->sin6_port);
  }
  return text;
}

// "30", "30s", "500ms", "2m" -> seconds.
double parse_duration(const std::string &text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (used == 0 || value < 0 || !(unit.empty() || unit == "s" || unit == "ms" || unit == "m"))
    die(fmt::format("'{}' is not a duration (examples: 30s, 500ms, 2m)", text));
  return unit == "ms" ? value / 1000 : unit == "m" ? value * 60 : value;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

void epoll_set(int epfd, int op, int fd, uint32_t events, uint32_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u32 = tag;
  if (epoll_ctl(epfd, op, fd, &ev) != 0)
    die(fmt::format("epoll_ctl: {}", errno_text(errno)));
}

// SIGINT and SIGTERM as a readable fd, so the epoll loop sees them.
UniqueFd signal_fd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd)
    die(fmt::format("signalfd: {}", errno_text(errno)));
  return fd;
}

// Failure reasons, each counted separately.
struct Errors {
  uint64_t refused = 0, reset = 0, timeout = 0, short_read = 0, no_address = 0, other = 0;
  uint64_t total() const { return refused + reset + timeout + short_read + no_address + other; }
  void add(int err) {
    if (err == ECONNREFUSED)
      ++refused;
    else if (err == ECONNRESET || err == EPIPE)
      ++reset;
    else if (err == ETIMEDOUT)
      ++timeout;
    else if (err == EADDRNOTAVAIL || err == EADDRINUSE)
      ++no_address;
    else
      ++other;
  }
  std::string json() const {
    return fmt::format(R"({{"refused":{},"reset":{},"timeout":{},"short":{},"no_address":{},)"
                       R"("other":{}}})",
                       refused, reset, timeout, short_read, no_address, other);
  }
};

// ---------------------------------------------------------------- client

class Client {
public:
  explicit Client(const Options &options)
      : options_(options), target_(parse_endpoint(options.address, options.port)),
        epoll_(epoll_create1(EPOLL_CLOEXEC)), signals_(signal_fd()), request_(options.request, 'q'),
        slots_(options.concurrency) {
    for (const auto &bind : options.binds) {
      binds_.push_back(parse_endpoint(bind, 0));
      if (binds_.back().family() != target_.family())
        die(fmt::format("--bind {} and --connect {} are of different address families", bind,
                        options.address));
    }
    if (!options.log_path.empty()) {
      log_ = std::fopen(options.log_path.c_str(), "w");
      if (!log_)
        die(fmt::format("cannot write {}: {}", options.log_path, errno_text(errno)));
      std::fputs("local_addr,local_port,result,start_ns,end_ns\n", log_);
    }
    epoll_set(epoll_.get(), EPOLL_CTL_ADD, signals_.get(), EPOLLIN, signal_tag);
  }
  ~Client() {
    if (log_)
      std::fclose(log_);
  }
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  void run() {
    start_ = Clock::now();
    for (uint32_t i = 0; i < slots_.size(); ++i)
      free_.push_back(i);
    std::vector<epoll_event> events(256);
    for (;;) {
      refill();
      if (active_ == 0)
        break;
      int n = epoll_wait(epoll_.get(), events.data(), int(events.size()), 100);
      if (n < 0 && errno != EINTR)
        die(fmt::format("epoll_wait: {}", errno_text(errno)));
      for (int k = 0; k < n; ++k)
        dispatch(events[k]);
      expire_slow();
    }
    elapsed_s_ = seconds_since(start_);
  }

  std::string json() const {
    return fmt::format(
        R"({{"role":"client","family":"{}","connect":"{}","port":{},"concurrency":{},)"
        R"("request_bytes":{},"reply_bytes":{},"close":"{}","attempted":{},"completed":{},)"
        R"("failed":{},"errors":{},"bytes_sent":{},"bytes_received":{},"elapsed_s":{:.6f},)"
        R"("completed_per_s":{:.1f}}})",
        target_.family() == AF_INET ? "ipv4" : "ipv6", options_.address, options_.port,
        options_.concurrency, options_.request, options_.reply, close_name(), attempted_,
        completed_, errors_.total(), errors_.json(), bytes_sent_, bytes_received_, elapsed_s_,
        elapsed_s_ > 0 ? completed_ / elapsed_s_ : 0.0);
  }

  bool all_completed() const { return errors_.total() == 0; }

private:
  static constexpr uint32_t signal_tag = UINT32_MAX;
  enum class Phase { idle, connecting, sending, receiving, draining };
  struct Slot {
    UniqueFd fd;
    Phase phase = Phase::idle;
    size_t sent = 0, received = 0;
    Clock::time_point started;
    uint64_t start_ns = 0;
  };

  const char *close_name() const {
    return options_.close == CloseMode::server   ? "server"
           : options_.close == CloseMode::client ? "client"
                                                 : "rst";
  }

  bool may_start() const {
    if (stopping_)
      return false;
    if (options_.count > 0)
      return attempted_ < options_.count;
    return seconds_since(start_) < options_.duration_s;
  }

  // Starts connections in the free slots while the budget lasts.
  void refill() {
    while (!free_.empty() && may_start()) {
      uint32_t i = free_.back();
      free_.pop_back();
      open(i);
    }
  }

  void open(uint32_t i) {
    Slot &slot = slots_[i];
    ++attempted_;
    ++active_;
    slot = Slot{};
    slot.started = Clock::now();
    slot.start_ns = realtime_ns();
    slot.fd.reset(socket(target_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!slot.fd)
      return fail(i, errno);
    if (!binds_.empty()) {
      // The port is chosen at connect time, together with the destination.
      int one = 1;
      setsockopt(slot.fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      const Endpoint &local = binds_[attempted_ % binds_.size()];
      if (bind(slot.fd.get(), reinterpret_cast<const sockaddr *>(&local.addr), local.len) != 0)
        return fail(i, errno);
    }
    int rc = connect(slot.fd.get(), reinterpret_cast<const sockaddr *>(&target_.addr), target_.len);
    if (rc != 0 && errno != EINPROGRESS)
      return fail(i, errno);
    slot.phase = Phase::connecting;
    epoll_set(epoll_.get(), EPOLL_CTL_ADD, slot.fd.get(), EPOLLOUT, i);
  }

  void dispatch(const epoll_event &event) {
    if (event.data.u32 == signal_tag) {
      signalfd_siginfo info;
      while (read(signals_.get(), &info, sizeof(info)) == sizeof(info))
        stopping_ = true;
      return;
    }
    uint32_t i = event.data.u32;
    switch (slots_[i].phase) {
    case Phase::connecting:
      return connected(i);
    case Phase::sending:
      return send_request(i);
    case Phase::receiving:
    case Phase::draining:
      return receive(i);
    case Phase::idle:
      return;
    }
  }

  void connected(uint32_t i) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(slots_[i].fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return fail(i, err);
    slots_[i].phase = Phase::sending;
    send_request(i);
  }

  void send_request(uint32_t i) {
    Slot &slot = slots_[i];
    while (slot.sent < request_.size()) {
      ssize_t n = write(slot.fd.get(), request_.data() + slot.sent, request_.size() - slot.sent);
      if (n < 0 && errno == EAGAIN) {
        epoll_set(epoll_.get(), EPOLL_CTL_MOD, slot.fd.get(), EPOLLOUT, i);
        return;
      }
      if (n < 0)
        return fail(i, errno);
      slot.sent += size_t(n);
      bytes_sent_ += uint64_t(n);
    }
    slot.phase = Phase::receiving;
    if (options_.reply == 0 && options_.close != CloseMode::server)
      return finish(i);
    epoll_set(epoll_.get(), EPOLL_CTL_MOD, slot.fd.get(), EPOLLIN, i);
  }

  void receive(uint32_t i) {
    Slot &slot = slots_[i];
    char buffer[65536];
    for (;;) {
      ssize_t n = read(slot.fd.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EAGAIN)
        return;
      if (n < 0)
        return fail(i, errno);
      if (n == 0) { // the server closed
        if (slot.received < options_.reply) {
          ++errors_.short_read;
          return release(i, "short");
        }
        return finish(i);
      }
      slot.received += size_t(n);
      bytes_received_ += uint64_t(n);
      if (slot.received >= options_.reply && options_.close != CloseMode::server)
        return finish(i);
      slot.phase = slot.received >= options_.reply ? Phase::draining : Phase::receiving;
    }
  }

  void finish(uint32_t i) {
    if (options_.close == CloseMode::rst) {
      linger abort{1, 0};
      setsockopt(slots_[i].fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    }
    ++completed_;
    release(i, "ok");
  }

  void fail(uint32_t i, int err) {
    errors_.add(err);
    release(i, "error");
  }

  void expire_slow() {
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].phase != Phase::idle && seconds_since(slots_[i].started) > options_.timeout_s)
        fail(i, ETIMEDOUT);
    }
  }

  // Logs the connection, closes it and frees its slot for the next one.
  void release(uint32_t i, const char *result) {
    Slot &slot = slots_[i];
    if (log_)
      log_line(slot, result);
    slot.fd.reset();
    slot.phase = Phase::idle;
    --active_;
    free_.push_back(i);
  }

  void log_line(const Slot &slot, const char *result) {
    sockaddr_storage local{};
    socklen_t len = sizeof(local);
    uint16_t port = 0;
    std::string addr;
    if (slot.fd && getsockname(slot.fd.get(), reinterpret_cast<sockaddr *>(&local), &len) == 0)
      addr = address_text(local, &port);
    std::fprintf(log_, "%s,%u,%s,%llu,%llu\n", addr.c_str(), port, result,
                 (unsigned long long)slot.start_ns, (unsigned long long)realtime_ns());
  }

  const Options &options_;
  Endpoint target_;
  std::vector<Endpoint> binds_;
  UniqueFd epoll_, signals_;
  std::string request_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::FILE *log_ = nullptr;
  Clock::time_point start_;
  bool stopping_ = false;
  uint64_t active_ = 0, attempted_ = 0, completed_ = 0, bytes_sent_ = 0, bytes_received_ = 0;
  Errors errors_;
  double elapsed_s_ = 0;
};

// ---------------------------------------------------------------- server

class Server {
public:
  explicit Server(const Options &options)
      : options_(options), epoll_(epoll_create1(EPOLL_CLOEXEC)), signals_(signal_fd()),
        reply_(options.reply, 'r') {
    Endpoint local = parse_endpoint(options.address, options.port);
    listener_.reset(socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!listener_ ||
        bind(listener_.get(), reinterpret_cast<const sockaddr *>(&local.addr), local.len) != 0 ||
        listen(listener_.get(), options.backlog) != 0)
      die(fmt::format("cannot listen on {} port {}: {}", options.address, options.port,
                      errno_text(errno)));
    epoll_set(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), EPOLLIN, listen_tag);
    epoll_set(epoll_.get(), EPOLL_CTL_ADD, signals_.get(), EPOLLIN, signal_tag);
    std::fprintf(stderr, "connload: listening on %s port %u\n", options.address.c_str(),
                 options.port);
  }

  void run() {
    start_ = Clock::now();
    std::vector<epoll_event> events(256);
    while (!stopping_) {
      int n = epoll_wait(epoll_.get(), events.data(), int(events.size()), -1);
      if (n < 0 && errno != EINTR)
        die(fmt::format("epoll_wait: {}", errno_text(errno)));
      for (int k = 0; k < n; ++k)
        dispatch(events[k].data.u32);
      if (options_.count > 0 && completed_ >= options_.count)
        stopping_ = true;
    }
    elapsed_s_ = seconds_since(start_);
  }

  std::string json() const {
    return fmt::format(
        R"({{"role":"server","listen":"{}","port":{},"accepted":{},"completed":{},)"
        R"("failed":{},"errors":{},"open_at_exit":{},"bytes_received":{},"bytes_sent":{},)"
        R"("elapsed_s":{:.6f}}})",
        options_.address, options_.port, accepted_, completed_, errors_.total(), errors_.json(),
        open_, bytes_received_, bytes_sent_, elapsed_s_);
  }

private:
  static constexpr uint32_t listen_tag = UINT32_MAX;
  static constexpr uint32_t signal_tag = UINT32_MAX - 1;
  enum class Phase { closed, reading, replying, awaiting_close };
  struct Conn {
    UniqueFd fd;
    Phase phase = Phase::closed;
    size_t received = 0, sent = 0;
  };

  void dispatch(uint32_t tag) {
    if (tag == listen_tag)
      return accept_all();
    if (tag == signal_tag) {
      stopping_ = true;
      return;
    }
    Conn &conn = conns_[tag];
    if (conn.phase == Phase::replying)
      return send_reply(conn);
    if (conn.phase != Phase::closed)
      receive(conn);
  }

  void accept_all() {
    for (;;) {
      int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != ECONNABORTED)
          errors_.add(errno);
        return;
      }
      ++accepted_;
      ++open_;
      if (size_t(fd) >= conns_.size())
        conns_.resize(size_t(fd) * 2);
      conns_[fd] = Conn{UniqueFd(fd), Phase::reading, 0, 0};
      epoll_set(epoll_.get(), EPOLL_CTL_ADD, fd, EPOLLIN, uint32_t(fd));
    }
  }

  void receive(Conn &conn) {
    char buffer[65536];
    for (;;) {
      ssize_t n = read(conn.fd.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EAGAIN)
        return;
      if (n < 0) { // a reset after the reply is how --close rst ends
        if (conn.phase == Phase::awaiting_close && errno == ECONNRESET)
          return done(conn, true);
        errors_.add(errno);
        return done(conn, false);
      }
      if (n == 0) {
        if (conn.phase == Phase::awaiting_close)
          return done(conn, true);
        ++errors_.short_read;
        return done(conn, false);
      }
      conn.received += size_t(n);
      bytes_received_ += uint64_t(n);
      if (conn.phase == Phase::reading && conn.received >= options_.request) {
        conn.phase = Phase::replying;
        return send_reply(conn);
      }
    }
  }

  void send_reply(Conn &conn) {
    while (conn.sent < reply_.size()) {
      ssize_t n = write(conn.fd.get(), reply_.data() + conn.sent, reply_.size() - conn.sent);
      if (n < 0 && errno == EAGAIN) {
        epoll_set(epoll_.get(), EPOLL_CTL_MOD, conn.fd.get(), EPOLLOUT, uint32_t(conn.fd.get()));
        return;
      }
      if (n < 0) {
        errors_.add(errno);
        return done(conn, false);
      }
      conn.sent += size_t(n);
      bytes_sent_ += uint64_t(n);
    }
    if (options_.close == CloseMode::server)
      return done(conn, true);
    conn.phase = Phase::awaiting_close;
    epoll_set(epoll_.get(), EPOLL_CTL_MOD, conn.fd.get(), EPOLLIN, uint32_t(conn.fd.get()));
  }

  void done(Conn &conn, bool ok) {
    if (ok)
      ++completed_;
    --open_;
    conn.fd.reset(); // closing removes it from the epoll set
    conn.phase = Phase::closed;
  }

  const Options &options_;
  UniqueFd epoll_, signals_, listener_;
  std::string reply_;
  std::vector<Conn> conns_ = std::vector<Conn>(1024);
  Clock::time_point start_;
  bool stopping_ = false;
  uint64_t accepted_ = 0, completed_ = 0, open_ = 0, bytes_received_ = 0, bytes_sent_ = 0;
  Errors errors_;
  double elapsed_s_ = 0;
};

// ---------------------------------------------------------------- command line

void add_common(CLI::App *app, Options &o, std::string &close) {
  app->add_option("--port", o.port, "TCP port (default 5001)");
  app->add_option("--request", o.request, "bytes the client sends per connection (default 16)");
  app->add_option("--reply", o.reply, "bytes the server answers per connection (default 16)");
  app->add_option("--close", close, "who ends a connection: server, client or rst")
      ->check(CLI::IsMember({"server", "client", "rst"}));
}

CloseMode close_mode(const std::string &name) {
  return name == "client" ? CloseMode::client : name == "rst" ? CloseMode::rst : CloseMode::server;
}

int run(int argc, char **argv) {
  CLI::App app{"connload: short TCP connections at the highest rate, exact totals as JSON"};
  app.require_subcommand(1);
  Options o;
  std::string close = "server", duration, timeout = "5s";

  auto *server = app.add_subcommand("server", "accept connections until SIGINT/SIGTERM");
  server->add_option("--listen", o.address, "address to listen on")->required();
  server->add_option("--count", o.count, "exit after this many completed connections");
  server->add_option("--backlog", o.backlog, "listen backlog (default 4096)");
  add_common(server, o, close);

  auto *client = app.add_subcommand("client", "open short connections in a loop");
  client->add_option("--connect", o.address, "server address")->required();
  client->add_option("-c,--concurrency", o.concurrency, "connections in flight (default 64)")
      ->check(CLI::Range(1u, 60000u));
  auto *count = client->add_option("-n,--count", o.count, "connections to attempt");
  client->add_option("-d,--duration", duration, "start connections for this long (30s, 500ms)")
      ->excludes(count);
  client->add_option("--bind", o.binds, "local address, repeatable (round robin)");
  client->add_option("--timeout", timeout, "a connection slower than this fails (default 5s)");
  client->add_option("--log", o.log_path, "CSV: one line per connection (local port, result)");
  add_common(client, o, close);

  CLI11_PARSE(app, argc, argv);
  o.close = close_mode(close);
  o.timeout_s = parse_duration(timeout);
  if (*server) {
    if (o.close == CloseMode::rst)
      o.close = CloseMode::client; // the server waits for the client's end either way
    Server s(o);
    s.run();
    std::puts(s.json().c_str());
    return 0;
  }
  if (duration.empty() && o.count == 0)
    die("give --count N or --duration D");
  if (!duration.empty())
    o.duration_s = parse_duration(duration);
  Client c(o);
  c.run();
  std::puts(c.json().c_str());
  return c.all_completed() ? 0 : 3;
}

} // namespace

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception &error) {
    std::fprintf(stderr, "connload: %s\n", error.what());
    return 1;
  }
}
