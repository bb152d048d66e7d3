{
  "targets": [
    {
      "target_name": "rxslirp_native",
      "sources": ["native/addon.cc", "native/netns.cc", "native/frames.cc", "native/ping.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
