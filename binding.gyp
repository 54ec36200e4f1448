{
  "targets": [
    {
      "target_name": "voice_core",
      "sources": [
        "native/addon.cc",
        "native/engine.cc",
        "native/session.cc",
        "native/session_vad.cc",
        "native/media_socket.cc",
        "native/rtp.cc",
        "native/g711.cc",
        "native/resampler.cc",
        "native/pacing_stats.cc",
        "native/tts.cc",
        "native/espeak_tts.cc",
        "native/jitter_buffer.cc",
        "native/plc.cc",
        "native/playout.cc",
        "native/opus_codec.cc",
        "native/dtmf.cc",
        "native/dtmf_inband.cc",
        "native/rtcp.cc",
        "native/recorder.cc",
        "native/srtp.cc",
        "native/rtp_load.cc",
        "native/vad/frame_cutter.cc",
        "native/vad/read_ahead.cc",
        "native/vad/turn_state.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "cflags_cc": [
        "-std=c++17", "-O2", "-Wall", "-Wextra",
        "-isystem", "<!(node -p \"require('node-addon-api').include_dir\")",
        "-isystem", "/usr/include/flite",
        "-isystem", "/usr/include/opus",
        "<!@(pkg-config --cflags libsrtp2)"
      ],
      "libraries": [
        "<!@(pkg-config --libs libsrtp2)",
        "-lflite_cmu_us_kal", "-lflite_cmu_us_kal16", "-lflite_cmu_us_slt",
        "-lflite_cmu_us_rms", "-lflite_cmu_us_awb",
        "-lflite_usenglish", "-lflite_cmulex", "-lflite", "-lespeak-ng", "-lopus", "-lm", "-lpthread"
      ]
    },
    {
      "target_name": "voice_stt",
      "sources": [
        "native/stt/stt_addon.cc",
        "native/stt/decoder.cc",
        "native/resampler.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "cflags_cc": [
        "-std=c++17", "-O2", "-Wall", "-Wextra",
        "-isystem", "<!(node -p \"require('node-addon-api').include_dir\")",
        "-isystem", "/usr/include/pocketsphinx",
        "-isystem", "/usr/include/sphinxbase",
        "-isystem", "/usr/include/x86_64-linux-gnu",
        "-isystem", "/usr/include/x86_64-linux-gnu/sphinxbase"
      ],
      "libraries": ["-lpocketsphinx", "-lsphinxbase", "-lm", "-lpthread"]
    }
  ]
}
