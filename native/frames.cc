// Frame I/O on a non-blocking tap fd, driven from the event loop.
//
// A Poller wraps a uv_poll_t: libuv's epoll tells us when the fd is readable
// or writable, and JavaScript then drains it with readFrames (many frames per
// call, packed into one caller-owned buffer) or fills it with writeFrames
// (many frames per call, stopping at EAGAIN so the caller can wait for
// POLLOUT instead of dropping). Nothing here allocates per frame.
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>

#include "rxslirp.h"

namespace rxslirp {

// readFrames(fd, buf: Uint8Array, offset, lengths: Int32Array, maxFrame)
//   -> count of frames read (their lengths in lengths[0..count)), or -errno
//      when the very first read fails with something other than EAGAIN.
// Frames are packed back to back from buf[offset]; reading stops at EAGAIN,
// when lengths is full, or when fewer than maxFrame bytes of room remain.
Napi::Value ReadFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  size_t offset = info[2].As<Napi::Number>().Uint32Value();
  Napi::Int32Array lengths = info[3].As<Napi::Int32Array>();
  size_t maxFrame = info[4].As<Napi::Number>().Uint32Value();

  uint8_t* base = buf.Data();
  size_t capacity = buf.ByteLength();
  size_t slots = lengths.ElementLength();
  int32_t* out = lengths.Data();
  size_t count = 0;
  while (count < slots && offset + maxFrame <= capacity) {
    ssize_t n = read(fd, base + offset, maxFrame);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || count > 0) break;
      return Napi::Number::New(env, -errno);
    }
    if (n == 0) break;
    out[count++] = static_cast<int32_t>(n);
    offset += static_cast<size_t>(n);
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// writeFrames(fd, frames: Uint8Array[], start, end, status: Int32Array,
//             headerLength, headed?: Uint8Array) -> index of the first frame
//             not yet written.
// Stops early only at EAGAIN. A frame the kernel refuses for any other reason
// is skipped: status[0] counts such frames and status[1] keeps the last errno.
// headerLength > 0 means each frame goes out behind a virtio-net header of
// that length: where headed[i] is 1, the header is the headerLength bytes
// just before frames[i] in its ArrayBuffer (the producer wrote it there);
// otherwise an empty (all zero) header is sent.
Napi::Value WriteFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array frames = info[1].As<Napi::Array>();
  uint32_t i = info[2].As<Napi::Number>().Uint32Value();
  uint32_t end = info[3].As<Napi::Number>().Uint32Value();
  Napi::Int32Array status = info[4].As<Napi::Int32Array>();
  uint32_t headerLength = info[5].As<Napi::Number>().Uint32Value();
  const uint8_t* headed = nullptr;
  size_t headedLength = 0;
  if (info.Length() > 6 && info[6].IsTypedArray()) {
    Napi::Uint8Array h = info[6].As<Napi::Uint8Array>();
    headed = h.Data();
    headedLength = h.ElementLength();
  }
  static uint8_t zeroHeader[16] = {0};
  if (headerLength > sizeof zeroHeader) headerLength = sizeof zeroHeader;

  for (; i < end; i++) {
    napi_value raw;
    if (napi_get_element(env, frames, i, &raw) != napi_ok) break;
    void* data = nullptr;
    size_t length = 0;
    napi_typedarray_type type;
    napi_value ab;
    size_t byteOffset;
    if (napi_get_typedarray_info(env, raw, &type, &length, &data, &ab, &byteOffset) != napi_ok) {
      status[0]++;
      status[1] = EINVAL;
      continue;
    }
    bool ownHeader = headerLength > 0 && headed != nullptr && i < headedLength && headed[i] &&
                     byteOffset >= headerLength;
    uint8_t* start = static_cast<uint8_t*>(data);
    struct iovec iov[2] = {{zeroHeader, headerLength}, {data, length}};
    ssize_t n;
    do {
      if (ownHeader) {
        n = write(fd, start - headerLength, length + headerLength);
      } else {
        n = headerLength ? writev(fd, iov, 2) : write(fd, data, length);
      }
    } while (n < 0 && errno == EINTR);
    if (n >= 0) continue;
    if (errno == EAGAIN) break;
    status[0]++;
    status[1] = errno;
  }
  return Napi::Number::New(env, i);
}

namespace {

// Poller(fd, callback(status, events)); start(events), stop(), close().
// events: 1 readable, 2 writable. Calls back through MakeCallback so that
// promise jobs queued by the callback run before control returns to libuv.
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start),
                        InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("close", &Poller::Close)});
  }

  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "rxslirp:poll");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    handle_ = new uv_poll_t;
    handle_->data = this;
    int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(rc))
          .ThrowAsJavaScriptException();
    }
  }

  ~Poller() override { CloseHandle(); }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Poller* self = static_cast<Poller*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->callback_.Env();
    Napi::HandleScope scope(env);
    int mapped = ((events & UV_READABLE) ? 1 : 0) | ((events & UV_WRITABLE) ? 2 : 0);
    self->callback_.MakeCallback(env.Global(),
                                 {Napi::Number::New(env, status), Napi::Number::New(env, mapped)},
                                 *self->context_);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (handle_ == nullptr) return info.Env().Undefined();
    int wanted = info[0].As<Napi::Number>().Int32Value();
    int events = ((wanted & 1) ? UV_READABLE : 0) | ((wanted & 2) ? UV_WRITABLE : 0);
    int rc = events ? uv_poll_start(handle_, events, OnPoll) : uv_poll_stop(handle_);
    return Napi::Number::New(info.Env(), rc);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    return info.Env().Undefined();
  }

  void CloseHandle() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

Napi::Object InitPoller(Napi::Env env, Napi::Object exports) {
  exports.Set("Poller", Poller::Define(env));
  return exports;
}

}  // namespace rxslirp
