// Unprivileged ICMP echo through ping sockets (icmp(7): SOCK_DGRAM with
// IPPROTO_ICMP, or IPPROTO_ICMPV6 for IPv6), for the echo NAT in
// src/operators/icmp-nat.ts.
//
// The kernel allows such a socket only to a process whose group lies inside
// net.ipv4.ping_group_range (it applies to both families); outside it,
// socket() fails with EACCES, which pingOpen reports as -EACCES like any
// other errno so that JavaScript can tell "forbidden" from "broken".
//
// The kernel owns the echo identifier: it is the socket's bound "port", and
// every request sent is rewritten to carry it (checksum included). Replies
// come back without the IP header, as the ICMP message alone. With
// IP_RECVERR (IPV6_RECVERR) set, ICMP errors about our requests wait on the
// socket's error queue, and poll reports POLLERR until it is drained.
//
// The fd is non-blocking and polled with the Poller of frames.cc; nothing
// here allocates per message: replies land in caller-owned buffers.
#include <errno.h>
#include <time.h>  // before linux/errqueue.h, which needs struct timespec
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rxslirp.h"

namespace rxslirp {

namespace {

// Layout of one message's record in pingReceive's meta array.
constexpr int kMetaStride = 8;
constexpr int kMetaLength = 0;  // bytes of ICMP data stored in buf
constexpr int kMetaKind = 1;    // 0 echo reply, 1 error from the error queue
constexpr int kMetaOrigin = 2;  // SO_EE_ORIGIN_* of an error
constexpr int kMetaType = 3;    // ICMP type of an error
constexpr int kMetaCode = 4;    // ICMP code of an error
constexpr int kMetaInfo = 5;    // ee_info: next-hop MTU, pointer, ...
constexpr int kMetaErrno = 6;   // ee_errno of an error
constexpr int kMetaTtl = 7;     // TTL / hop limit of a reply, 0 if unknown
constexpr int kAddressStride = 16;

bool IsV6(int family) { return family == 6; }

// Fills `sa` from 4 (IPv4) or 16 (IPv6) address bytes; returns its length or 0.
socklen_t ToSockaddr(int family, const uint8_t* address, size_t length, sockaddr_storage* sa) {
  memset(sa, 0, sizeof *sa);
  if (IsV6(family)) {
    if (length != 16) return 0;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(sa);
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, address, 16);
    return sizeof *sin6;
  }
  if (length != 4) return 0;
  auto* sin = reinterpret_cast<sockaddr_in*>(sa);
  sin->sin_family = AF_INET;
  memcpy(&sin->sin_addr, address, 4);
  return sizeof *sin;
}

// Copies the address of `sa` into out[0..16) (IPv4 in the first 4 bytes).
void FromSockaddr(const sockaddr* sa, uint8_t* out) {
  memset(out, 0, kAddressStride);
  if (sa->sa_family == AF_INET) {
    memcpy(out, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    memcpy(out, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  }
}

// One recvmsg; fills the message's meta record and address. Returns the
// byte count or -errno.
ssize_t ReceiveOne(int fd, bool errorQueue, uint8_t* data, size_t room, int32_t* meta,
                   uint8_t* address) {
  sockaddr_storage from;
  alignas(cmsghdr) uint8_t control[256];
  iovec iov = {data, room};
  msghdr msg = {};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | (errorQueue ? MSG_ERRQUEUE : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;

  for (int i = 0; i < kMetaStride; i++) meta[i] = 0;
  meta[kMetaLength] = static_cast<int32_t>(n);
  meta[kMetaKind] = errorQueue ? 1 : 0;
  memset(address, 0, kAddressStride);
  if (!errorQueue) FromSockaddr(reinterpret_cast<sockaddr*>(&from), address);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    bool isTtl = (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                 (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT);
    bool isError = (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                   (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR);
    if (isTtl && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int ttl;
      memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      meta[kMetaTtl] = ttl;
    } else if (isError && c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err))) {
      sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      meta[kMetaOrigin] = ee.ee_origin;
      meta[kMetaType] = ee.ee_type;
      meta[kMetaCode] = ee.ee_code;
      meta[kMetaInfo] = static_cast<int32_t>(ee.ee_info);
      meta[kMetaErrno] = static_cast<int32_t>(ee.ee_errno);
      // The offender (the host that sent the ICMP error) follows the record.
      size_t offenderAt = CMSG_LEN(sizeof ee);
      if (c->cmsg_len >= offenderAt + sizeof(sockaddr_in)) {
        sockaddr_storage offender = {};
        size_t avail = c->cmsg_len - offenderAt;
        memcpy(&offender, CMSG_DATA(c) + sizeof ee,
               avail < sizeof offender ? avail : sizeof offender);
        FromSockaddr(reinterpret_cast<sockaddr*>(&offender), address);
      }
    }
  }
  return n;
}

}  // namespace

// pingOpen(family: 4 | 6) -> fd, or -errno (-EACCES when the group range
// forbids ping sockets). The socket is non-blocking, close-on-exec, and
// reports ICMP errors on its error queue and the TTL of replies.
Napi::Value PingOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool v6 = IsV6(info[0].As<Napi::Number>().Int32Value());
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP));
  if (fd < 0) return Napi::Number::New(env, -errno);
  int on = 1;
  int rc = v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on)
              : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  if (rc == 0) {
    rc = v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on)
            : setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
  }
  if (rc != 0) {
    int saved = errno;
    close(fd);
    return Napi::Number::New(env, -saved);
  }
  return Napi::Number::New(env, fd);
}

// pingSend(fd, family, address: Uint8Array(4|16), message: Uint8Array, ttl)
//   -> bytes sent, or -errno. `message` is a whole echo request (type 8 or
// 128, code 0); the kernel replaces its identifier and checksum. ttl in
// 1..255 sets the TTL (hop limit) of this datagram alone, through a control
// message; 0 keeps the socket's default.
Napi::Value PingSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int family = info[1].As<Napi::Number>().Int32Value();
  Napi::Uint8Array address = info[2].As<Napi::Uint8Array>();
  Napi::Uint8Array message = info[3].As<Napi::Uint8Array>();
  int ttl = info[4].As<Napi::Number>().Int32Value();

  sockaddr_storage to;
  socklen_t toLength = ToSockaddr(family, address.Data(), address.ByteLength(), &to);
  if (toLength == 0) return Napi::Number::New(env, -EINVAL);
  iovec iov = {message.Data(), message.ByteLength()};
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))];
  msghdr msg = {};
  msg.msg_name = &to;
  msg.msg_namelen = toLength;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (ttl >= 1 && ttl <= 255) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IsV6(family) ? IPPROTO_IPV6 : IPPROTO_IP;
    c->cmsg_type = IsV6(family) ? IPV6_HOPLIMIT : IP_TTL;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// pingReceive(fd, buf: Uint8Array, offset, meta: Int32Array,
//             addresses: Uint8Array, maxMessage) -> count, or -errno.
// Drains the error queue first, then the replies, until EAGAIN, until
// meta has no record left, or until fewer than maxMessage bytes of buf
// remain. Message i's bytes follow message i-1's from buf[offset]; its
// record is meta[8i .. 8i+8) (length, kind, origin, type, code, info, errno,
// ttl) and its address addresses[16i .. 16i+16): the sender of a reply, the
// reporter of an error (all zero if the kernel named none). An error's bytes
// are the ICMP header (and what follows) of our request it is about.
Napi::Value PingReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  size_t offset = info[2].As<Napi::Number>().Uint32Value();
  Napi::Int32Array meta = info[3].As<Napi::Int32Array>();
  Napi::Uint8Array addresses = info[4].As<Napi::Uint8Array>();
  size_t maxMessage = info[5].As<Napi::Number>().Uint32Value();

  size_t slots = meta.ElementLength() / kMetaStride;
  size_t addressSlots = addresses.ByteLength() / kAddressStride;
  if (addressSlots < slots) slots = addressSlots;
  size_t capacity = buf.ByteLength();
  size_t count = 0;
  int firstError = 0;
  // Pass 0 drains the error queue, pass 1 the replies. A reply read can
  // fail with a pending socket error (which clears it): then the error
  // queue is drained once more, so at most four passes in all.
  bool errorQueue = true;
  for (int pass = 0; pass < 4 && count < slots; pass++) {
    while (count < slots && offset + maxMessage <= capacity) {
      ssize_t n = ReceiveOne(fd, errorQueue, buf.Data() + offset, maxMessage,
                             meta.Data() + count * kMetaStride,
                             addresses.Data() + count * kAddressStride);
      if (n == -EAGAIN) break;
      if (n < 0) {
        if (firstError == 0) firstError = static_cast<int>(-n);
        break;
      }
      offset += static_cast<size_t>(n);
      count++;
    }
    if (!errorQueue && firstError == 0) break;
    if (firstError == EBADF || firstError == ENOTSOCK) break;
    errorQueue = !errorQueue;
  }
  if (count == 0 && (firstError == EBADF || firstError == ENOTSOCK)) {
    return Napi::Number::New(env, -firstError);
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

}  // namespace rxslirp
