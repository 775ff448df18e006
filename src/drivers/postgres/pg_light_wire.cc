// The light client's socket layer: addresses, non-blocking connect, and
// Wire (send, read one message, with a deadline).
#include "drivers/postgres/pg_light.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"
#include "drivers/postgres/pg_light_internal.h"

namespace ferry::postgres::light_internal {

int RemainingMs(const Deadline& deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`; false with `error` set otherwise.
bool WaitFor(int fd, short events, const Deadline& deadline, std::string* error) {
  while (true) {
    pollfd p{fd, events, 0};
    int ms = RemainingMs(deadline);
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0) {
      *error = "timeout expired";
      return false;
    }
    if (errno != EINTR) {
      *error = std::strerror(errno);
      return false;
    }
  }
}

bool Wire::Send(std::string_view data, const Deadline& deadline, std::string* error) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Wait until writable, taking in what the server sends meanwhile, so
      // that neither side blocks on a full socket buffer (a long batch).
      pollfd p{fd_, POLLOUT | POLLIN, 0};
      int rc = ::poll(&p, 1, RemainingMs(deadline));
      if (rc == 0) {
        *error = "timeout expired";
        return false;
      }
      if (rc < 0) {
        if (errno == EINTR) continue;
        *error = std::strerror(errno);
        return false;
      }
      if ((p.revents & POLLIN) != 0 && !TakeAvailable(error)) return false;
      continue;
    }
    *error = n < 0 ? std::strerror(errno) : "send failed";
    return false;
  }
  return true;
}

bool Wire::ReadByte(char* out, const Deadline& deadline, std::string* error) {
  if (!Fill(1, deadline, error)) return false;
  *out = buffer_[begin_++];
  return true;
}

bool Wire::ReadMessage(char* type, std::string_view* body, const Deadline& deadline,
                 std::string* error) {
  if (!Fill(5, deadline, error)) return false;
  BodyReader header(std::string_view(buffer_.data() + begin_ + 1, 4));
  uint32_t length = header.U32();
  if (length < 4 || length > light_internal::kMaxMessageLength) {
    *error = fmt::format("protocol error: message of length {}", length);
    return false;
  }
  if (!Fill(1 + length, deadline, error)) return false;
  *type = buffer_[begin_];
  *body = std::string_view(buffer_.data() + begin_ + 5, length - 4);
  begin_ += 1 + length;
  return true;
}

bool Wire::TakeAvailable(std::string* error) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == buffer_.size()) {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    } else {
      buffer_.resize(buffer_.size() * 2);
    }
  }
  ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
  if (got > 0) {
    end_ += static_cast<size_t>(got);
    return true;
  }
  if (got == 0) {
    *error = "server closed the connection unexpectedly";
    return false;
  }
  if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return true;
  *error = std::strerror(errno);
  return false;
}

bool Wire::Fill(size_t n, const Deadline& deadline, std::string* error) {
  if (end_ - begin_ >= n) return true;
  if (begin_ == end_) begin_ = end_ = 0;
  if (buffer_.size() - begin_ < n) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    if (buffer_.size() < n) buffer_.resize(std::max(n, buffer_.size() * 2));
  }
  while (end_ - begin_ < n) {
    ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
    if (got > 0) {
      end_ += static_cast<size_t>(got);
      continue;
    }
    if (got == 0) {
      *error = "server closed the connection unexpectedly";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!WaitFor(fd_, POLLIN, deadline, error)) return false;
      continue;
    }
    *error = std::strerror(errno);
    return false;
  }
  return true;
}

// The socket addresses to try for `target`, in order (a Unix socket, or
// what the host name resolves to); false with a libpq-style `error`.
bool AddressesOf(const Target& target, std::vector<Address>* addresses, std::string* error) {
  if (target.unix_socket()) {
    Address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    std::string path = target.SocketPath();
    if (path.size() >= sizeof un->sun_path) {
      *error = fmt::format("Unix-domain socket path \"{}\" is too long", path);
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    a.length = static_cast<socklen_t>(sizeof(sockaddr_un));
    a.text = path;
    addresses->push_back(a);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string port = std::to_string(target.port);
    int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
      *error = fmt::format("could not translate host name \"{}\" to address: {}", target.host,
                           gai_strerror(rc));
      return false;
    }
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address a;
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      a.length = ai->ai_addrlen;
      char text[INET6_ADDRSTRLEN] = "";
      const void* raw =
          ai->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
      if (::inet_ntop(ai->ai_family, raw, text, sizeof text) == nullptr) text[0] = '\0';
      a.text = text;
      addresses->push_back(a);
    }
    ::freeaddrinfo(list);
  }
  return true;
}

// Connects a non-blocking socket to `address` before `deadline`.
int ConnectTo(const Address& address, const Deadline& deadline, std::string* error) {
  int family = reinterpret_cast<const sockaddr*>(&address.storage)->sa_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    *error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    if (!WaitFor(fd, POLLOUT, deadline, error)) {
      ::close(fd);
      return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
      *error = std::strerror(so_error != 0 ? so_error : errno);
      ::close(fd);
      return -1;
    }
  }
  if (family != AF_UNIX) {
    int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  }
  return fd;
}

}  // namespace ferry::postgres::light_internal
