// Module entry: registers the functions of netns.cc, frames.cc and ping.cc.
#include "rxslirp.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTap", Napi::Function::New(env, rxslirp::OpenTap, "openTap"));
  exports.Set("readFrames", Napi::Function::New(env, rxslirp::ReadFrames, "readFrames"));
  exports.Set("writeFrames", Napi::Function::New(env, rxslirp::WriteFrames, "writeFrames"));
  exports.Set("closeFd", Napi::Function::New(env, rxslirp::CloseFd, "closeFd"));
  exports.Set("pingOpen", Napi::Function::New(env, rxslirp::PingOpen, "pingOpen"));
  exports.Set("pingSend", Napi::Function::New(env, rxslirp::PingSend, "pingSend"));
  exports.Set("pingReceive", Napi::Function::New(env, rxslirp::PingReceive, "pingReceive"));
  return rxslirp::InitPoller(env, exports);
}

}  // namespace

NODE_API_MODULE(rxslirp_native, Init)
