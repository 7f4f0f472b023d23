/* A pseudo-terminal from a container's own devpts: its ptmx opened inside the container's root (seen
 * through /proc/PID/root) with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so no
 * symlink of the container's can send the open elsewhere, and the slave taken with TIOCGPTPEER (no path
 * lookup at all). `tty` inside then names /dev/pts/N of the container's own instance. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "throw.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif


/* openptyIn(rootPath) -> { master, slave, path }: rootPath is a container's root, e.g. /proc/PID/root. */
static napi_value OpenptyIn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char root[256];
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, a[0], root, sizeof root, &len) != napi_ok || len == 0) {
    napi_throw_type_error(env, NULL, "openptyIn: a root path");
    return NULL;
  }
  int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return throw_errno(env, "open the container's root", errno);
  struct open_how how = {
    .flags = O_RDWR | O_NOCTTY | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
  };
  int m = syscall(SYS_openat2, rfd, "/dev/pts/ptmx", &how, sizeof how);
  int e = errno;
  close(rfd);
  if (m < 0) return throw_errno(env, "open the container's /dev/pts/ptmx", e);
  int unlock = 0, n = -1;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0) {
    e = errno;
    close(m);
    return throw_errno(env, "unlock the container's pty", e);
  }
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    e = errno;
    close(m);
    return throw_errno(env, "open the container's pty slave", e);
  }
  char path[32];
  snprintf(path, sizeof path, "/dev/pts/%d", n);
  napi_value r, v;
  napi_create_object(env, &r);
  napi_create_int32(env, m, &v);
  napi_set_named_property(env, r, "master", v);
  napi_create_int32(env, s, &v);
  napi_set_named_property(env, r, "slave", v);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, r, "path", v);
  return r;
}

void pty_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = { { "openptyIn", NULL, OpenptyIn, NULL, NULL, NULL, napi_default, NULL } };
  napi_define_properties(env, exports, 1, d);
}
