// Opening a TAP device inside another network namespace.
//
// setns(CLONE_NEWUSER) refuses a multi-threaded caller, and Node always runs
// several threads. So the work happens in a forked child, which has a single
// thread: it joins the user namespace (when the target's differs from ours),
// then the network namespace, opens /dev/net/tun, optionally configures the
// interface with ioctls, and passes the tap fd back over a SOCK_SEQPACKET
// socketpair with SCM_RIGHTS. Only async-signal-safe work is allowed after
// fork in a multi-threaded process, so the parent builds every path and
// buffer the child needs (Request, including the sysctl paths) before
// forking; the child allocates nothing and only makes system calls on memory
// it inherited, so nothing it does can trip over a lock (malloc's, say)
// another thread held at fork time. A failure comes back as (step, errno) and is thrown here as an
// Error whose message names the step.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "rxslirp.h"

namespace rxslirp {
namespace {

struct Request {
  std::string netnsPath;
  std::string usernsPath;  // empty: stay in our user namespace
  std::string tapName;
  bool vnetHdr = false;
  bool configure = false;
  int mtu = 1500;
  bool setMac = false;
  unsigned char mac[6] = {0};
  uint32_t address = 0;  // host byte order
  uint32_t netmask = 0;
  uint32_t gateway = 0;
  bool ipv6 = false;  // prepare the tap for SLAAC from our router advertisements
  // /proc/sys/net/ipv6/conf/<tap>/{disable_ipv6,accept_ra,accept_dad}, built
  // by the parent: the child must not allocate.
  std::string disableIpv6Path;
  std::string acceptRaPath;
  std::string acceptDadPath;
};

struct Reply {
  int32_t error;  // errno, 0 on success
  char step[96];
};

void SendReply(int sock, int error, const char* step, int fd) {
  Reply reply;
  memset(&reply, 0, sizeof reply);
  reply.error = error;
  strncpy(reply.step, step, sizeof reply.step - 1);

  struct iovec iov = {&reply, sizeof reply};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  while (sendmsg(sock, &msg, 0) < 0 && errno == EINTR) {
  }
}

bool SameNamespace(int fd, const char* ours) {
  struct stat a, b;
  if (fstat(fd, &a) < 0 || stat(ours, &b) < 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void SetInet(struct sockaddr* sa, uint32_t address) {
  struct sockaddr_in* sin = reinterpret_cast<struct sockaddr_in*>(sa);
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(address);
}

// Returns the failing step, or nullptr. errno holds the cause.
const char* SetFlagsUp(int s, const char* name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return "get interface flags";
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return "set interface up";
  return nullptr;
}

// Writes `value` to a file under /proc/sys/net/ipv6/conf/<tap>/. /proc/sys/net
// shows the namespace of the process that opens the file: ours, now.
bool WriteIpv6Sysctl(const std::string& path, const char* value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t length = strlen(value);
  ssize_t n = write(fd, value, length);
  int saved = errno;
  close(fd);
  errno = saved;
  return n == static_cast<ssize_t>(length);
}

// Before the tap comes up: accept router advertisements even if the
// namespace forwards (accept_ra 2), and skip duplicate address detection
// (nobody else is on this link), so that the SLAAC address is usable at
// once instead of "tentative" for a second.
const char* PrepareIpv6(const Request& r) {
  if (!WriteIpv6Sysctl(r.disableIpv6Path, "0")) return "configure: enable IPv6 on the tap";
  if (!WriteIpv6Sysctl(r.acceptRaPath, "2")) return "configure: set accept_ra";
  if (!WriteIpv6Sysctl(r.acceptDadPath, "0")) return "configure: set accept_dad";
  return nullptr;
}

const char* Configure(const Request& r) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return "configure: socket";
  const char* failed = SetFlagsUp(s, "lo");
  if (failed) return "configure: bring lo up";

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, r.tapName.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = r.mtu;
  if (ioctl(s, SIOCSIFMTU, &ifr) < 0) return "configure: set MTU";

  if (r.setMac) {
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, r.mac, 6);
    if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) return "configure: set MAC address";
  }

  SetInet(&ifr.ifr_addr, r.address);
  if (ioctl(s, SIOCSIFADDR, &ifr) < 0) return "configure: set address";
  SetInet(&ifr.ifr_netmask, r.netmask);
  if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) return "configure: set netmask";
  if (r.ipv6) {
    failed = PrepareIpv6(r);
    if (failed) return failed;
  }
  if (SetFlagsUp(s, r.tapName.c_str())) return "configure: bring tap up";

  struct rtentry route;
  memset(&route, 0, sizeof route);
  SetInet(&route.rt_dst, 0);
  SetInet(&route.rt_genmask, 0);
  SetInet(&route.rt_gateway, r.gateway);
  route.rt_flags = RTF_UP | RTF_GATEWAY;
  route.rt_dev = const_cast<char*>(r.tapName.c_str());
  if (ioctl(s, SIOCADDRT, &route) < 0) return "configure: add default route";
  close(s);
  return nullptr;
}

// Runs in the forked child; never returns.
[[noreturn]] void ChildMain(const Request& r, int sock) {
  const char* step = nullptr;
  int tap = -1;
  int userns = -1;
  int netns = open(r.netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns < 0) {
    step = "open network namespace";
    goto fail;
  }
  if (!r.usernsPath.empty()) {
    userns = open(r.usernsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (userns < 0) {
      step = "open user namespace";
      goto fail;
    }
    if (!SameNamespace(userns, "/proc/self/ns/user") && setns(userns, CLONE_NEWUSER) < 0) {
      step = "join user namespace";
      goto fail;
    }
  }
  if (setns(netns, CLONE_NEWNET) < 0) {
    step = "join network namespace";
    goto fail;
  }

  tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tap < 0) {
    step = "open /dev/net/tun";
    goto fail;
  }
  {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (r.vnetHdr ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, r.tapName.c_str(), IFNAMSIZ - 1);
    if (ioctl(tap, TUNSETIFF, &ifr) < 0) {
      step = "create tap device (TUNSETIFF)";
      goto fail;
    }
    // We finish partial checksums and accept TCP super-frames (GSO) that
    // the guest would otherwise have to cut to the MTU and checksum itself.
    unsigned int offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (r.vnetHdr && ioctl(tap, TUNSETOFFLOAD, offloads) < 0) {
      step = "enable tap offloads (TUNSETOFFLOAD)";
      goto fail;
    }
  }
  if (r.configure) {
    step = Configure(r);
    if (step) goto fail;
  }
  SendReply(sock, 0, "", tap);
  _exit(0);

fail:
  SendReply(sock, errno, step, -1);
  _exit(1);
}

bool ReadRequest(const Napi::Object& o, Request* r, std::string* error) {
  r->netnsPath = o.Get("netnsPath").As<Napi::String>().Utf8Value();
  Napi::Value userns = o.Get("usernsPath");
  if (userns.IsString()) r->usernsPath = userns.As<Napi::String>().Utf8Value();
  r->tapName = o.Get("tapName").As<Napi::String>().Utf8Value();
  if (r->tapName.empty() || r->tapName.size() >= IFNAMSIZ) {
    *error = "tap name must be 1 to 15 bytes: " + r->tapName;
    return false;
  }
  r->vnetHdr = o.Get("vnetHdr").ToBoolean().Value();

  Napi::Value cfg = o.Get("configure");
  if (!cfg.IsObject()) return true;
  Napi::Object c = cfg.As<Napi::Object>();
  r->configure = true;
  r->mtu = c.Get("mtu").As<Napi::Number>().Int32Value();
  r->address = c.Get("address").As<Napi::Number>().Uint32Value();
  r->netmask = c.Get("netmask").As<Napi::Number>().Uint32Value();
  r->gateway = c.Get("gateway").As<Napi::Number>().Uint32Value();
  r->ipv6 = c.Get("ipv6").ToBoolean().Value();
  if (r->ipv6) {
    std::string dir = "/proc/sys/net/ipv6/conf/" + r->tapName + "/";
    r->disableIpv6Path = dir + "disable_ipv6";
    r->acceptRaPath = dir + "accept_ra";
    r->acceptDadPath = dir + "accept_dad";
  }
  Napi::Value mac = c.Get("mac");
  if (mac.IsBuffer()) {
    Napi::Buffer<uint8_t> b = mac.As<Napi::Buffer<uint8_t>>();
    if (b.Length() != 6) {
      *error = "MAC address must be 6 bytes";
      return false;
    }
    memcpy(r->mac, b.Data(), 6);
    r->setMac = true;
  }
  return true;
}

}  // namespace

// openTap({netnsPath, usernsPath?, tapName, vnetHdr, configure?}) -> fd
Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "openTap: expected an options object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Request r;
  std::string error;
  if (!ReadRequest(info[0].As<Napi::Object>(), &r, &error)) {
    Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
    Napi::Error::New(env, std::string("socketpair: ") + strerror(errno))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    close(pair[0]);
    close(pair[1]);
    Napi::Error::New(env, std::string("fork: ") + strerror(e)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (child == 0) {
    close(pair[0]);
    ChildMain(r, pair[1]);
  }
  close(pair[1]);

  Reply reply;
  memset(&reply, 0, sizeof reply);
  struct iovec iov = {&reply, sizeof reply};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(pair[0], &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  int recvErrno = errno;
  close(pair[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }

  int fd = -1;
  struct cmsghdr* cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  }
  if (n <= 0) {
    std::string why = n < 0 ? strerror(recvErrno) : "the namespace helper exited early";
    Napi::Error::New(env, "receiving the tap fd: " + why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (reply.error != 0 || fd < 0) {
    if (fd >= 0) close(fd);
    reply.step[sizeof reply.step - 1] = 0;
    Napi::Error e = Napi::Error::New(env, std::string(reply.step) + ": " + strerror(reply.error));
    e.Set("errno", Napi::Number::New(env, reply.error));
    e.Set("step", Napi::String::New(env, reply.step));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), close(fd) < 0 ? -errno : 0);
}

}  // namespace rxslirp
