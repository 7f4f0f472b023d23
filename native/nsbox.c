/* nsbox's addon: a thin N-API layer over the Linux syscalls a container needs.
 * Policy lives in TypeScript; this file only copies plans into C memory, clones, and
 * exposes single syscalls. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#define NSBOX_CLONE_INTO_CGROUP 0x200000000ULL
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct nsbox_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* ---- errors and argument helpers ---- */

static napi_value throw_errno(napi_env env, const char *call, int err) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s (%s)", call, strerror(err), name ? name : "?");
  napi_value m, e, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "code", v);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static int64_t get_int(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return (int64_t)d;
}

static napi_value args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  for (size_t i = argc; i < n; i++) napi_get_undefined(env, &argv[i]);
  return NULL;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value prop(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  napi_get_named_property(env, obj, name, &v);
  return v;
}

static int is_undefined(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

/* ---- plans ---- */

static void free_plan(struct plan *p) {
  for (int i = 0; i < p->nops; i++) {
    struct op *o = &p->ops[i];
    for (int j = 0; j < o->ns; j++) free(o->s[j]);
    free(o->s);
    free(o->n);
    free(o->b);
    free(o->argv);
    free(o->envp);
  }
  free(p->ops);
  free(p);
}

static int read_op(napi_env env, napi_value v, struct op *o) {
  uint32_t len = 0;
  napi_value a = prop(env, v, "op");
  o->kind = (int)get_int(env, a);
  a = prop(env, v, "s");
  if (!is_undefined(env, a)) napi_get_array_length(env, a, &len);
  o->ns = (int)len;
  o->s = calloc(len + 1, sizeof(char *));
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    napi_get_element(env, a, i, &e);
    if (!(o->s[i] = get_string(env, e))) return -1;
  }
  len = 0;
  a = prop(env, v, "n");
  if (!is_undefined(env, a)) napi_get_array_length(env, a, &len);
  o->nn = (int)len;
  o->n = calloc(len + 1, sizeof(int64_t));
  for (uint32_t i = 0; i < len; i++) {
    napi_value e;
    napi_get_element(env, a, i, &e);
    o->n[i] = get_int(env, e);
  }
  a = prop(env, v, "alt");
  if (!is_undefined(env, a)) o->alt = (int)get_int(env, a);
  a = prop(env, v, "b");
  if (!is_undefined(env, a)) {
    void *data;
    napi_get_buffer_info(env, a, &data, &o->blen);
    o->b = malloc(o->blen ? o->blen : 1);
    memcpy(o->b, data, o->blen);
  }
  if (o->kind == OP_EXEC) {
    int argc = (int)o->n[0], envc = (int)o->n[1];
    if (o->nn < 2 || argc < 1 || envc < 0 || argc + envc > o->ns) return -1;
    o->argv = calloc(argc + 1, sizeof(char *));
    o->envp = calloc(envc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++) o->argv[i] = o->s[i];
    for (int i = 0; i < envc; i++) o->envp[i] = o->s[argc + i];
  }
  if ((o->kind == OP_OPEN_TREE || o->kind == OP_MOVE_MOUNT) && (o->nn < 1 || o->n[0] < 0 || o->n[0] >= PLAN_SLOTS))
    return -1;
  if (check_path_op(o) < 0) return -1;
  return 0;
}

static struct plan *read_plan(napi_env env, napi_value ops) {
  uint32_t len;
  if (napi_get_array_length(env, ops, &len) != napi_ok) return NULL;
  struct plan *p = calloc(1, sizeof *p);
  p->ops = calloc(len ? len : 1, sizeof(struct op));
  p->nops = (int)len;
  for (int i = 0; i < PLAN_SLOTS; i++) p->slots[i] = -1;
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    napi_get_element(env, ops, i, &v);
    if (read_op(env, v, &p->ops[i]) < 0 || p->ops[i].alt < 0 || p->ops[i].alt >= (int)(len - i)) {
      free_plan(p);
      return NULL;
    }
  }
  return p;
}

/* posix_spawn-style start: the child runs the plan on a stack of its own inside our memory
 * (CLONE_VM) while this thread sleeps (CLONE_VFORK) until the child has exec'd or died. Nothing
 * of Node's address space is copied (nor torn down again at exec), so a start costs the same
 * whatever the heap's size. Only for plans that never wait for the parent (OP_WAIT_SYNC would
 * deadlock; nor OP_HOLD), never outlive exec (OP_INIT's reaper would go on sharing our memory) and need no
 * clone3-only flag (CLONE_INTO_CGROUP). The child only reads its plan and writes its own stack;
 * errno it sets lands in this (sleeping) thread's TLS, which we read only when clone fails. */
#define CHILD_STACK (256 * 1024)
#define GUARD_PAGE 4096

static int can_vfork(const struct plan *p, uint64_t flags) {
  if (flags >> 32) return 0;
  for (int i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_WAIT_SYNC || p->ops[i].kind == OP_INIT || p->ops[i].kind == OP_HOLD) return 0;
  return 1;
}

static int child_main(void *arg) { plan_run(arg); }

static pid_t spawn_vfork(struct plan *p, uint64_t flags, int *pidfd) {
  char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  pid_t pid = -1;
  if (mprotect(stack, GUARD_PAGE, PROT_NONE) == 0) /* an overflow faults instead of writing into our heap */
    pid = clone(child_main, stack + CHILD_STACK, (int)flags | CLONE_VM | CLONE_VFORK | SIGCHLD, p, pidfd);
  int e = errno;
  munmap(stack, CHILD_STACK);
  errno = e;
  return pid;
}

/* spawn({ flags, cgroupFd?, sync?, ops }) -> { pid, pidfd, errFd, syncFd } */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  napi_value a[1];
  args(env, info, 1, a);
  struct plan *p = read_plan(env, prop(env, a[0], "ops"));
  if (!p) {
    napi_throw_type_error(env, NULL, "spawn: malformed plan");
    return NULL;
  }
  uint64_t flags = (uint64_t)get_int(env, prop(env, a[0], "flags"));
  napi_value cg = prop(env, a[0], "cgroupFd");
  bool sync = false;
  napi_get_value_bool(env, prop(env, a[0], "sync"), &sync);

  int errp[2], syncp[2] = { -1, -1 };
  if (pipe2(errp, O_CLOEXEC) < 0) {
    free_plan(p);
    return throw_errno(env, "pipe2", errno);
  }
  if (sync && pipe2(syncp, O_CLOEXEC) < 0) {
    int e = errno;
    close(errp[0]);
    close(errp[1]);
    free_plan(p);
    return throw_errno(env, "pipe2", e);
  }
  p->err_fd = errp[1];
  p->sync_fd = syncp[0];
  p->sync_peer = syncp[1];

  int pidfd = -1;
  struct nsbox_clone_args ca = { 0 };
  ca.flags = flags | CLONE_PIDFD;
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  if (!is_undefined(env, cg)) {
    ca.flags |= NSBOX_CLONE_INTO_CGROUP;
    ca.cgroup = (uint64_t)get_int(env, cg);
  }

  /* No signal handler of Node's may run in the child before it resets them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid;
  if (can_vfork(p, ca.flags)) {
    pid = spawn_vfork(p, ca.flags, &pidfd);
  } else {
    pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) plan_run(p);
  }
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  close(errp[1]);
  if (sync) close(syncp[0]);
  free_plan(p);
  if (pid < 0) {
    close(errp[0]);
    if (sync) close(syncp[1]);
    return throw_errno(env, "clone3", e);
  }
  napi_value r;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "pid", num(env, pid));
  napi_set_named_property(env, r, "pidfd", num(env, pidfd));
  napi_set_named_property(env, r, "errFd", num(env, errp[0]));
  napi_set_named_property(env, r, "syncFd", num(env, syncp[1]));
  return r;
}

/* ---- waiting: libuv watches an fd; the callback runs once, when it is readable ---- */

struct watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
};

static void watch_closed(uv_handle_t *h) { free(h->data); }

static void watch_fired(uv_poll_t *h, int status, int events) {
  (void)events;
  struct watch *w = h->data;
  napi_env env = w->env;
  uv_poll_stop(h);
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, arg, res;
  napi_get_reference_value(env, w->cb, &fn);
  napi_get_global(env, &recv);
  napi_create_int32(env, status, &arg);
  napi_status st = napi_make_callback(env, w->ctx, recv, fn, 1, &arg, &res);
  if (st == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, w->cb);
  napi_async_destroy(env, w->ctx);
  uv_close((uv_handle_t *)h, watch_closed);
}

/* watchReadable(fd, cb): calls cb(status) once when fd becomes readable. */
static napi_value WatchReadable(napi_env env, napi_callback_info info) {
  napi_value a[2], name;
  args(env, info, 2, a);
  int fd = (int)get_int(env, a[0]);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  struct watch *w = calloc(1, sizeof *w);
  w->env = env;
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  napi_create_reference(env, a[1], 1, &w->cb);
  napi_create_string_utf8(env, "nsbox.watch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->ctx);
  uv_poll_start(&w->poll, UV_READABLE, watch_fired);
  return NULL;
}

/* waitPidfd(pidfd) -> { code, signal, userUs, systemUs, maxRssKb } or null if still running */
static napi_value WaitPidfd(napi_env env, napi_callback_info info) {
  napi_value a[1], r;
  args(env, info, 1, a);
  int pidfd = (int)get_int(env, a[0]);
  siginfo_t si;
  struct rusage ru;
  memset(&si, 0, sizeof si);
  if (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG, &ru) < 0) return throw_errno(env, "waitid", errno);
  if (si.si_pid == 0) {
    napi_get_null(env, &r);
    return r;
  }
  napi_create_object(env, &r);
  bool exited = si.si_code == CLD_EXITED;
  napi_value nul;
  napi_get_null(env, &nul);
  napi_set_named_property(env, r, "code", exited ? num(env, si.si_status) : nul);
  napi_set_named_property(env, r, "signal", exited ? nul : num(env, si.si_status));
  napi_set_named_property(env, r, "userUs", num(env, ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec));
  napi_set_named_property(env, r, "systemUs", num(env, ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec));
  napi_set_named_property(env, r, "maxRssKb", num(env, ru.ru_maxrss));
  return r;
}

/* ---- single syscalls ---- */

static napi_value PidfdOpen(napi_env env, napi_callback_info info) {
  napi_value a[1];
  args(env, info, 1, a);
  int fd = syscall(SYS_pidfd_open, (pid_t)get_int(env, a[0]), 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  return num(env, fd);
}

static napi_value PidfdSendSignal(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  if (syscall(SYS_pidfd_send_signal, (int)get_int(env, a[0]), (int)get_int(env, a[1]), NULL, 0) < 0)
    return throw_errno(env, "pidfd_send_signal", errno);
  return NULL;
}

static napi_value Pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", errno);
  napi_value r;
  napi_create_array_with_length(env, 2, &r);
  napi_set_element(env, r, 0, num(env, fds[0]));
  napi_set_element(env, r, 1, num(env, fds[1]));
  return r;
}

static napi_value Unshare(napi_env env, napi_callback_info info) {
  napi_value a[1];
  args(env, info, 1, a);
  if (unshare((int)get_int(env, a[0])) < 0) return throw_errno(env, "unshare", errno);
  return NULL;
}

static napi_value Setns(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  if (setns((int)get_int(env, a[0]), is_undefined(env, a[1]) ? 0 : (int)get_int(env, a[1])) < 0)
    return throw_errno(env, "setns", errno);
  return NULL;
}

static napi_value PivotRoot(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  char *n = get_string(env, a[0]), *o = get_string(env, a[1]);
  int rc = n && o ? syscall(SYS_pivot_root, n, o) : (errno = EINVAL, -1);
  int e = errno;
  free(n);
  free(o);
  if (rc < 0) return throw_errno(env, "pivot_root", e);
  return NULL;
}

static char *opt_string(napi_env env, napi_value v) { return is_undefined(env, v) ? NULL : get_string(env, v); }

static napi_value Mount(napi_env env, napi_callback_info info) {
  napi_value a[5];
  args(env, info, 5, a);
  char *src = opt_string(env, a[0]), *dst = opt_string(env, a[1]), *fs = opt_string(env, a[2]);
  char *data = opt_string(env, a[4]);
  unsigned long flags = is_undefined(env, a[3]) ? 0 : (unsigned long)get_int(env, a[3]);
  int rc = syscall(SYS_mount, src, dst, fs, flags, data);
  int e = errno;
  free(src);
  free(dst);
  free(fs);
  free(data);
  if (rc < 0) return throw_errno(env, "mount", e);
  return NULL;
}

static napi_value Umount(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  char *t = get_string(env, a[0]);
  int rc = t ? syscall(SYS_umount2, t, is_undefined(env, a[1]) ? 0 : (int)get_int(env, a[1])) : (errno = EINVAL, -1);
  int e = errno;
  free(t);
  if (rc < 0) return throw_errno(env, "umount2", e);
  return NULL;
}

static napi_value Sethostname(napi_env env, napi_callback_info info) {
  napi_value a[1];
  args(env, info, 1, a);
  char *n = get_string(env, a[0]);
  int rc = n ? sethostname(n, strlen(n)) : (errno = EINVAL, -1);
  int e = errno;
  free(n);
  if (rc < 0) return throw_errno(env, "sethostname", e);
  return NULL;
}

/* flock(fd, op): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8. Returns false when LOCK_NB finds it held. */
static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value a[2], r;
  args(env, info, 2, a);
  int rc;
  do rc = flock((int)get_int(env, a[0]), (int)get_int(env, a[1])); while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  napi_get_boolean(env, rc == 0, &r);
  return r;
}

/* openpty() -> { master, slave, path }: a new pseudo-terminal pair, both close-on-exec. */
static napi_value Openpty(napi_env env, napi_callback_info info) {
  (void)info;
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return throw_errno(env, "posix_openpt", errno);
  char path[64];
  if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, path, sizeof path) != 0) {
    int e = errno;
    close(m);
    return throw_errno(env, "ptsname", e);
  }
  int s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    int e = errno;
    close(m);
    return throw_errno(env, "open pty", e);
  }
  napi_value r, p;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "master", num(env, m));
  napi_set_named_property(env, r, "slave", num(env, s));
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p);
  napi_set_named_property(env, r, "path", p);
  return r;
}

/* setWinsize(fd, rows, cols): TIOCSWINSZ; the terminal's foreground group gets SIGWINCH. */
static napi_value SetWinsize(napi_env env, napi_callback_info info) {
  napi_value a[3];
  args(env, info, 3, a);
  struct winsize ws = { .ws_row = (unsigned short)get_int(env, a[1]), .ws_col = (unsigned short)get_int(env, a[2]) };
  if (ioctl((int)get_int(env, a[0]), TIOCSWINSZ, &ws) < 0) return throw_errno(env, "ioctl TIOCSWINSZ", errno);
  return NULL;
}

#define FN(name, f) { name, NULL, f, NULL, NULL, NULL, napi_default, NULL }

void bpf_register(napi_env env, napi_value exports);
void hold_register(napi_env env, napi_value exports);

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    FN("spawn", Spawn),
    FN("watchReadable", WatchReadable),
    FN("waitPidfd", WaitPidfd),
    FN("pidfdOpen", PidfdOpen),
    FN("pidfdSendSignal", PidfdSendSignal),
    FN("pipe", Pipe),
    FN("unshare", Unshare),
    FN("setns", Setns),
    FN("pivotRoot", PivotRoot),
    FN("mount", Mount),
    FN("umount", Umount),
    FN("sethostname", Sethostname),
    FN("flock", Flock),
    FN("openpty", Openpty),
    FN("setWinsize", SetWinsize),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  bpf_register(env, exports); /* native/bpf.c */
  hold_register(env, exports); /* native/hold.c */
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
