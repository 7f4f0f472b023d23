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

/* Reads exactly n bytes (the FIFO is open read-write here, so it never reads EOF). */
static int read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EPIPE;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static uint32_t le32(const char *b) {
  const unsigned char *u = (const unsigned char *)b;
  return u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* The command message (native/plan.h) into the plan's buffer and pointers: no allocation here. EINVAL when it is
 * not well formed, E2BIG when it does not fit. */
static int receive_command(struct plan *p, int fd) {
  char h[16];
  if (read_full(fd, h, 4) < 0) return -1;
  uint32_t len = le32(h);
  if (len > p->cmd_cap) { errno = E2BIG; return -1; }
  if (len < 12 + 2) { errno = EINVAL; return -1; }
  if (read_full(fd, h + 4, 12) < 0 || read_full(fd, p->cmd, len - 12) < 0) return -1;
  uint32_t argc = le32(h + 4), envc = le32(h + 8), ncand = le32(h + 12);
  size_t body = len - 12, want = (size_t)argc + envc + ncand + 1;
  if (want + 2 > p->cmd_nptrs) { errno = E2BIG; return -1; }
  if (argc < 1 || want > body || p->cmd[body - 1] != 0) { errno = EINVAL; return -1; }
  /* cwd, then each string into its place: argv... NULL envp... NULL candidates... */
  size_t k = 0;
  char *start = p->cmd;
  for (size_t i = 0; i < body; i++) {
    if (p->cmd[i]) continue;
    if (k == want) { errno = EINVAL; return -1; }
    if (k > 0) {
      size_t slot = k - 1 + (k - 1 >= argc) + (k - 1 >= (size_t)argc + envc);
      p->cmd_ptrs[slot] = start;
    }
    k++;
    start = p->cmd + i + 1;
  }
  if (k != want) { errno = EINVAL; return -1; }
  p->cmd_ptrs[argc] = NULL;
  p->cmd_ptrs[argc + 1 + envc] = NULL;
  p->cmd_argc = (int)argc;
  p->cmd_envc = (int)envc;
  p->cmd_ncand = (int)ncand;
  return 0;
}

/* OP_HOLD: tell the parent set-up is done (a report of this step with errno 0), then wait on the FIFO.
 * Without a command buffer (an OCI runtime's create): close the error pipe (EOF: the parent may exit now) and
 * wait for one byte; from here on failures are not reported, the process exits 127, as runc's does when exec
 * fails after start. With one (a sandbox pool): keep the pipe, so the command's failure is reported as a fresh
 * start's is, and read the command message. */
int op_hold(struct plan *p, struct op *o, int step) {
  if (o->nn < 1 || o->n[0] < 0 || o->n[0] >= PLAN_SLOTS || p->slots[o->n[0]] < 0) { errno = EINVAL; return -1; }
  int command = o->nn > 1 && o->n[1] > 0;
  if (command && !p->cmd) { errno = EINVAL; return -1; }
  int32_t r[2] = { step, 0 };
  if (write(p->err_fd, r, sizeof r) != sizeof r) return -1;
  if (!command) {
    close(p->err_fd);
    p->err_fd = -1;
  }
  int fd = p->slots[o->n[0]];
  int rc = 0;
  if (command) {
    rc = receive_command(p, fd);
  } else {
    char c;
    ssize_t n;
    do n = read(fd, &c, 1); while (n < 0 && errno == EINTR);
    if (n != 1) { errno = n == 0 ? EPIPE : errno; rc = -1; }
  }
  int e = errno;
  close(fd);
  p->slots[o->n[0]] = -1;
  errno = e;
  return rc;
}

/* OP_HELD_CHDIR: the message's cwd, resolved in the root as OP_CHDIR_IN_ROOT does (an empty one: stay). */
int op_held_chdir(struct plan *p) {
  if (!p->cmd_argc) { errno = EINVAL; return -1; }
  if (!p->cmd[0]) return 0;
  char *s[1] = { p->cmd };
  int64_t n[1] = { 0 };
  struct op o = { .kind = OP_CHDIR_IN_ROOT, .ns = 1, .nn = 1, .s = s, .n = n };
  return op_chdir_in_root(p, &o);
}

/* OP_HELD_EXEC: as OP_EXEC, the first candidate path that exists. */
int op_held_exec(struct plan *p) {
  if (!p->cmd_argc) { errno = EINVAL; return -1; }
  char **argv = p->cmd_ptrs, **envp = argv + p->cmd_argc + 1, **cand = envp + p->cmd_envc + 1;
  int saw_eacces = 0;
  for (int i = 0; i < p->cmd_ncand; i++) {
    execve(cand[i], argv, envp);
    if (errno == EACCES) saw_eacces = 1;
    else if (errno != ENOENT && errno != ENOTDIR) return -1;
  }
  errno = saw_eacces ? EACCES : ENOENT;
  return -1;
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
