/* eBPF for the devices controller of cgroup v2: load a BPF_PROG_TYPE_CGROUP_DEVICE program (its
 * instructions are built in TypeScript, src/devices/bpf.ts) and attach it to a cgroup directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "throw.h"


/* bpfLoadDeviceProgram(insns: Buffer) -> fd. The verifier's log is in the error when it refuses. */
static napi_value LoadDeviceProgram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *insns = NULL;
  size_t len = 0;
  if (argc < 1 || napi_get_buffer_info(env, a[0], &insns, &len) != napi_ok || len == 0 || len % 8) {
    napi_throw_type_error(env, NULL, "bpfLoadDeviceProgram: expected a Buffer of eBPF instructions");
    return NULL;
  }
  static char log[65536];
  log[0] = 0;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)(len / 8);
  attr.license = (uint64_t)(uintptr_t)"MIT";
  int fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0 && errno == EACCES) {
    /* Refused by the verifier: load again with its log, for the message. */
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  }
  if (fd < 0) {
    int e = errno;
    if (log[0]) {
      char call[600];
      size_t n = strlen(log);
      snprintf(call, sizeof call, "bpf(BPF_PROG_LOAD) [...%.500s]", n > 500 ? log + n - 500 : log);
      return throw_errno(env, call, e);
    }
    return throw_errno(env, "bpf(BPF_PROG_LOAD)", e);
  }
  /* Close-on-exec, as every fd of ours must be. */
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "fcntl", e);
  }
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/* bpfAttachDevice(progFd, cgroupFd): BPF_PROG_ATTACH as BPF_CGROUP_DEVICE with BPF_F_ALLOW_MULTI
 * (programs of parent cgroups keep applying: every one must allow an access). */
static napi_value AttachDevice(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t prog = -1, cg = -1;
  napi_get_value_int32(env, a[0], &prog);
  napi_get_value_int32(env, a[1], &cg);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cg;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0) return throw_errno(env, "bpf(BPF_PROG_ATTACH)", errno);
  return NULL;
}

void bpf_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "bpfLoadDeviceProgram", NULL, LoadDeviceProgram, NULL, NULL, NULL, napi_default, NULL },
    { "bpfAttachDevice", NULL, AttachDevice, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 2, d);
}
