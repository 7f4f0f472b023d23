{
  "targets": [
    {
      "target_name": "nsbox",
      "sources": ["native/nsbox.c", "native/child.c", "native/paths.c", "native/bpf.c", "native/pty.c", "native/fsops.c",
                  "native/hold.c", "native/idmap.c", "native/net.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "nsbox-monitor",
      "type": "executable",
      "sources": ["native/monitor.c"],
      "cflags": ["-std=gnu11", "-Os", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
