{
  "targets": [
    {
      "target_name": "vswin_kernels",
      "sources": ["src/addon.c", "src/gemm.c", "src/elementwise.c", "src/attention.c", "src/norm.c", "src/optimizer.c", "src/pool.c", "src/peak.c"],
      "cflags": ["-O3", "-std=gnu11", "-fno-math-errno", "-pthread"],
      "cflags!": ["-O2"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-std=gnu11", "-fno-math-errno"]
      }
    }
  ]
}
