// rxslirp native layer: the device side only. It opens a TAP device inside
// another network namespace, configures it, and moves whole frames between
// the tap fd and JavaScript buffers without blocking libuv's thread pool.
// It never parses a packet.
#pragma once

#include <napi.h>

namespace rxslirp {

Napi::Value OpenTap(const Napi::CallbackInfo& info);
Napi::Value ReadFrames(const Napi::CallbackInfo& info);
Napi::Value WriteFrames(const Napi::CallbackInfo& info);
Napi::Value CloseFd(const Napi::CallbackInfo& info);
Napi::Value PingOpen(const Napi::CallbackInfo& info);
Napi::Value PingSend(const Napi::CallbackInfo& info);
Napi::Value PingReceive(const Napi::CallbackInfo& info);
Napi::Object InitPoller(Napi::Env env, Napi::Object exports);

}  // namespace rxslirp
