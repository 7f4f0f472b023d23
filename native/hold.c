/* Holding a container before exec (an OCI runtime's create/start split) and passing a terminal's
 * master over a unix socket (--console-socket). The hold ops run in the child: raw syscalls only. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "throw.h"

/* OP_HOLD_OPEN: open the hold FIFO (a host path, before pivot_root) read-write into a slot. O_RDWR
 * never blocks on a FIFO, and keeps a reader open, so `start` can open it for writing at any time. */
int op_hold_open(struct plan *p, struct op *o) {
  if (o->ns < 1 || o->nn < 1 || o->n[0] < 0 || o->n[0] >= PLAN_SLOTS) { errno = EINVAL; return -1; }
  int fd = open(o->s[0], O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || fcntl(fd, F_SETFL, 0) < 0) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  p->slots[o->n[0]] = fd;
  return 0;
}

/* OP_HOLD: tell the parent set-up is done (a report of this step with errno 0, then EOF: the
 * parent may exit now), then wait for one byte on the FIFO. From here on failures are not reported:
 * the process exits 127, as runc's does when exec fails after start. */
int op_hold(struct plan *p, struct op *o, int step) {
  if (o->nn < 1 || o->n[0] < 0 || o->n[0] >= PLAN_SLOTS || p->slots[o->n[0]] < 0) { errno = EINVAL; return -1; }
  int32_t r[2] = { step, 0 };
  if (write(p->err_fd, r, sizeof r) != sizeof r) return -1;
  close(p->err_fd);
  p->err_fd = -1;
  int fd = p->slots[o->n[0]];
  char c;
  ssize_t n;
  do n = read(fd, &c, 1); while (n < 0 && errno == EINTR);
  close(fd);
  p->slots[o->n[0]] = -1;
  if (n != 1) { errno = n == 0 ? EPIPE : errno; return -1; }
  return 0;
}


/* sendFd(socketPath, fd): connect to a unix stream socket and send fd with SCM_RIGHTS (one byte of
 * data, as runc and crun send the terminal's master to --console-socket). */
static napi_value SendFd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  size_t len = 0;
  int32_t fd;
  if (argc < 2 || napi_get_value_string_utf8(env, a[0], path, sizeof path, &len) != napi_ok ||
      napi_get_value_int32(env, a[1], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendFd: expected (socket path, fd)");
    return NULL;
  }
  if (len == 0 || len >= sizeof path - 1) return throw_errno(env, "console socket path", ENAMETOOLONG);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  memcpy(sa.sun_path, path, len + 1);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, "socket", errno);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(s);
    return throw_errno(env, "connect to the console socket", e);
  }
  char byte = 0, ctl[CMSG_SPACE(sizeof(int))];
  memset(ctl, 0, sizeof ctl);
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(s, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  int e = errno;
  close(s);
  if (n < 0) return throw_errno(env, "send the terminal to the console socket", e);
  return NULL;
}

/* mkfifo(path, mode): the FIFO a held container waits on. */
static napi_value Mkfifo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char path[4096];
  size_t len = 0;
  uint32_t mode;
  if (argc < 2 || napi_get_value_string_utf8(env, a[0], path, sizeof path, &len) != napi_ok ||
      napi_get_value_uint32(env, a[1], &mode) != napi_ok || len == 0 || len >= sizeof path - 1) {
    napi_throw_type_error(env, NULL, "mkfifo: expected (path, mode)");
    return NULL;
  }
  if (mkfifo(path, mode) < 0) return throw_errno(env, "mkfifo", errno);
  return NULL;
}

void hold_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "sendFd", NULL, SendFd, NULL, NULL, NULL, napi_default, NULL },
    { "mkfifo", NULL, Mkfifo, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 2, d);
}
