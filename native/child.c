/* The child side of spawn(): runs a plan between clone() and execve().
 * Node is multi-threaded and this is a fork-like copy of it holding one thread:
 * no allocation, no locks, no JS — only raw syscalls and async-signal-safe libc. */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct report { int32_t step; int32_t err; };

__attribute__((noreturn)) static void fail(struct plan *p, int step, int err) {
  struct report r = { step, err };
  ssize_t w = write(p->err_fd, &r, sizeof r);
  (void)w;
  _exit(127);
}

static int do_mount(const char *src, const char *dst, const char *fs, unsigned long flags, const char *data) {
  return syscall(SYS_mount, src, dst, fs, flags, data);
}

static int do_pivot_root(const char *root) {
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the new root. */
  if (chdir(root) < 0) return -1;
  if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
  if (syscall(SYS_umount2, ".", MNT_DETACH) < 0) return -1;
  return chdir("/");
}

static int loopback_up(void) {
  struct ifreq ifr = { .ifr_name = "lo" };
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

static int do_dup2(int from, int to) {
  if (from == to) return fcntl(to, F_SETFD, 0); /* keep it open across exec */
  return dup2(from, to) < 0 ? -1 : 0;
}

static int do_exec(struct op *o) {
  int argc = (int)o->n[0], envc = (int)o->n[1];
  int saw_eacces = 0;
  for (int i = argc + envc; i < o->ns; i++) {
    execve(o->s[i], o->argv, o->envp);
    if (errno == EACCES) saw_eacces = 1;
    else if (errno != ENOENT && errno != ENOTDIR) return -1;
  }
  errno = saw_eacces ? EACCES : ENOENT;
  return -1;
}

/* Runs after setresuid: a switch to a non-root uid (with PR_SET_KEEPCAPS) kept the permitted set
 * but emptied the effective one, and dropping from the bounding set needs CAP_SETPCAP effective.
 * So: raise effective to permitted, drop the bound, set eff/perm/inh, then the ambient set. */
static int do_caps(struct op *o) {
  uint64_t m[5];
  for (int i = 0; i < 5; i++) m[i] = (uint64_t)(uint32_t)o->n[2 * i] | ((uint64_t)(uint32_t)o->n[2 * i + 1] << 32);
  struct __user_cap_header_struct h0 = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d0[2];
  if (syscall(SYS_capget, &h0, d0) < 0) return -1;
  for (int i = 0; i < 2; i++) d0[i].effective = d0[i].permitted;
  if (syscall(SYS_capset, &h0, d0) < 0) return -1;
  for (int cap = 0; cap < 64; cap++) {
    if (m[0] & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  }
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  for (int i = 0; i < 2; i++) {
    d[i].effective = (uint32_t)(m[1] >> (32 * i));
    d[i].permitted = (uint32_t)(m[2] >> (32 * i));
    d[i].inheritable = (uint32_t)(m[3] >> (32 * i));
  }
  if (syscall(SYS_capset, &h, d) < 0) return -1;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  for (int cap = 0; cap < 64; cap++) {
    if (!(m[4] & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) return -1;
  }
  return 0;
}

static int do_seccomp(struct op *o) {
  struct sock_fprog prog = { (unsigned short)(o->blen / sizeof(struct sock_filter)), o->b };
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, o->nn > 0 ? (unsigned)o->n[0] : 0, &prog);
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (data[len]) len++;
  ssize_t w = write(fd, data, len);
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)len ? 0 : -1;
}

/* OP_CLOSE with n = [-1, keep...]: close every fd above 2 but the plan's pipes and `keep`. */
static int close_others(struct plan *p, struct op *o) {
  int keep[18], k = 0;
  keep[k++] = p->err_fd;
  if (p->sync_fd >= 0) keep[k++] = p->sync_fd;
  for (int i = 1; i < o->nn && k < 18; i++) keep[k++] = (int)o->n[i];
  for (int i = 1; i < k; i++) /* insertion sort: no allocation here */
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j]; keep[j] = keep[j - 1]; keep[j - 1] = t;
    }
  unsigned from = 3;
  for (int i = 0; i < k; i++) {
    if (keep[i] < (int)from) continue;
    if (keep[i] > (int)from && syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0U) < 0) return -1;
    from = (unsigned)keep[i] + 1;
  }
  return syscall(SYS_close_range, from, ~0U, 0U) < 0 ? -1 : 0;
}

/* Parse an unsigned decimal at *p, moving past it. */
static unsigned long parse_ul(const char **p) {
  unsigned long v = 0;
  while (**p >= '0' && **p <= '9') v = v * 10 + (unsigned long)(*(*p)++ - '0');
  return v;
}

/* Blank the argv and environment the reaper inherited from the Node process (its /proc cmdline
 * and environ), and name it "init". Best effort: without a /proc of our own it stays as is. */
static void scrub_args(void) {
  prctl(PR_SET_NAME, "init", 0, 0, 0);
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  const char *p = buf + n;
  while (p > buf && *p != ')') p--;
  if (*p != ')') return;
  p += 2; /* field 3 */
  unsigned long v[4];
  for (int field = 3; field < 52; field++) {
    if (field >= 48) v[field - 48] = parse_ul(&p);
    while (*p && *p != ' ') p++;
    if (*p) p++;
  }
  /* arg_start, arg_end, env_start, env_end: the strings sit in our (copied) stack. */
  if (v[1] > v[0] && v[1] - v[0] < (1 << 20)) {
    char *a = (char *)v[0];
    for (unsigned long i = 0; i < v[1] - v[0]; i++) a[i] = 0;
    const char *name = "init";
    for (int i = 0; name[i] && (unsigned long)i < v[1] - v[0] - 1; i++) a[i] = name[i];
  }
  if (v[3] > v[2] && v[3] - v[2] < (1 << 22)) {
    char *e = (char *)v[2];
    for (unsigned long i = 0; i < v[3] - v[2]; i++) e[i] = 0;
  }
}

/* PID 1 of a container, or the process that joins one: fork, forward every signal to the
 * child, reap whatever ends, and leave with the child's status. */
static int init_loop(void) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  /* The reaper is a copy of Node holding the host's memory: unreadable from the container before the
   * command can run (the command's exec makes it dumpable again). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return -1;
  /* The command waits on this pipe until the reaper holds no fd of ours (EOF: the reaper closed its end). */
  int gate[2];
  if (pipe2(gate, O_CLOEXEC) < 0) return -1;
  pid_t child = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (child < 0) {
    close(gate[0]);
    close(gate[1]);
    return -1;
  }
  if (child == 0) {
    close(gate[1]);
    char c;
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(gate[0]);
    sigprocmask(SIG_SETMASK, &old, 0);
    return 0;
  }
  scrub_args();
  /* The reaper needs no fd: drop the error pipe (so exec success is seen), the gate, and anything inherited. */
  syscall(SYS_close_range, 3U, ~0U, 0U);
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      /* The terminal already sent these to the whole foreground group, the child included. */
      int from_tty = si.si_code == SI_KERNEL && (sig == SIGINT || sig == SIGQUIT || sig == SIGTSTP || sig == SIGWINCH);
      if (!from_tty) kill(child, sig);
      continue;
    }
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
      if (w != child) continue;
      if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
      int s = WTERMSIG(st);
      signal(s, SIG_DFL);
      sigprocmask(SIG_UNBLOCK, &all, 0);
      kill(getpid(), s); /* ignored when we are PID 1 of a namespace */
      _exit(128 + s);
    }
  }
}

static int run_op(struct plan *p, struct op *o) {
  char c;
  switch (o->kind) {
  case OP_MOUNT:
    return do_mount(o->s[0][0] ? o->s[0] : NULL, o->s[1], o->s[2][0] ? o->s[2] : NULL,
                    (unsigned long)o->n[0], o->s[3][0] ? o->s[3] : NULL);
  case OP_MKDIR:
    return mkdir(o->s[0], (mode_t)o->n[0]) < 0 && errno != EEXIST ? -1 : 0;
  case OP_PIVOT_ROOT: return do_pivot_root(o->s[0]);
  case OP_UMOUNT: return syscall(SYS_umount2, o->s[0], (int)o->n[0]);
  case OP_SETHOSTNAME: {
    size_t len = 0;
    while (o->s[0][len]) len++;
    return sethostname(o->s[0], len);
  }
  case OP_LOOPBACK_UP: return loopback_up();
  case OP_DUP2: return do_dup2((int)o->n[0], (int)o->n[1]);
  case OP_CHDIR: return chdir(o->s[0]);
  case OP_SETRLIMIT: {
    struct rlimit rl = { o->n[1] < 0 ? RLIM_INFINITY : (rlim_t)o->n[1], o->n[2] < 0 ? RLIM_INFINITY : (rlim_t)o->n[2] };
    return setrlimit((int)o->n[0], &rl);
  }
  case OP_EXEC: return do_exec(o);
  case OP_SYMLINK: return symlink(o->s[0], o->s[1]) < 0 && errno != EEXIST ? -1 : 0;
  case OP_CREATE_FILE: {
    int fd = open(o->s[0], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, (mode_t)o->n[0]);
    if (fd < 0) return -1;
    return close(fd);
  }
  case OP_SETATTR: {
    struct mount_attr a = { .attr_set = (uint64_t)o->n[0], .attr_clr = (uint64_t)o->n[1] };
    return syscall(SYS_mount_setattr, AT_FDCWD, o->s[0], o->n[2] ? AT_RECURSIVE : 0, &a, sizeof a);
  }
  case OP_WAIT_SYNC: {
    ssize_t r;
    do r = read(p->sync_fd, &c, 1); while (r < 0 && errno == EINTR);
    if (r == 1) {
      int fd = p->sync_fd;
      p->sync_fd = -1; /* its number may be reused: OP_CLOSE must not keep that fd */
      return close(fd);
    }
    if (r == 0) errno = ECANCELED;
    return -1;
  }
  case OP_SETSID: return setsid() < 0 ? -1 : 0;
  case OP_SETNS: return setns((int)o->n[0], (int)o->n[1]);
  case OP_UNSHARE: return unshare((int)o->n[0]);
  case OP_PRCTL: return prctl((int)o->n[0], o->n[1], o->n[2], o->n[3], o->n[4]) < 0 ? -1 : 0;
  case OP_SETGROUPS: {
    gid_t g[64];
    int k = o->nn > 64 ? 64 : o->nn;
    for (int i = 0; i < k; i++) g[i] = (gid_t)o->n[i];
    return syscall(SYS_setgroups, k, g);
  }
  case OP_SETRESGID: return syscall(SYS_setresgid, o->n[0], o->n[0], o->n[0]);
  case OP_SETRESUID: return syscall(SYS_setresuid, o->n[0], o->n[0], o->n[0]);
  case OP_CAPS: return do_caps(o);
  case OP_SECCOMP: return do_seccomp(o);
  case OP_OPEN_AT: return op_open_at(p, o);
  case OP_MOVE_MOUNT_TO: return op_move_mount_to(p, o);
  case OP_FSMOUNT: return op_fsmount(p, o);
  case OP_CLONE_TREE: return op_clone_tree(p, o);
  case OP_SETATTR_SLOT: return op_setattr_slot(p, o);
  case OP_CHDIR_IN_ROOT: return op_chdir_in_root(p, o);
  case OP_OPEN_BENEATH: return op_open_beneath(p, o);
  case OP_ATTACH: return op_attach(p, o);
  case OP_MKNOD_AT: return op_mknod_at(p, o);
  case OP_SYMLINK_AT: return op_symlink_at(p, o);
  case OP_MASK_AT: return op_mask_at(p, o);
  case OP_CLOSE_SLOTS: return op_close_slots(p, o);
  case OP_CLOSE_FDS: return syscall(SYS_close_range, (unsigned)o->n[0], ~0U, CLOSE_RANGE_CLOEXEC);
  case OP_OPEN_TREE: {
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (o->n[1] ? AT_RECURSIVE : 0);
    if (p->slots[o->n[0]] >= 0) close(p->slots[o->n[0]]); /* a reused slot, as OP_OPEN_AT does */
    p->slots[o->n[0]] = -1;
    int fd = syscall(SYS_open_tree, AT_FDCWD, o->s[0], flags);
    if (fd < 0) return -1;
    p->slots[o->n[0]] = fd;
    return 0;
  }
  case OP_MOVE_MOUNT: {
    int fd = p->slots[o->n[0]];
    p->slots[o->n[0]] = -1; /* closed below: a later OP_OPEN_AT on this slot must not close a reused number */
    int rc = syscall(SYS_move_mount, fd, "", AT_FDCWD, o->s[0], MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    close(fd);
    errno = e;
    return rc < 0 ? -1 : 0;
  }
  case OP_INIT: return init_loop();
  case OP_UMASK: umask((mode_t)o->n[0]); return 0;
  case OP_PERSONALITY: return syscall(SYS_personality, (unsigned long)o->n[0]) < 0 ? -1 : 0;
  case OP_WRITE_FILE: return write_file(o->s[0], o->s[1]);
  case OP_SET_TTY: return ioctl((int)o->n[0], TIOCSCTTY, 0);
  case OP_HOLD_OPEN: return op_hold_open(p, o);
  case OP_HOLD: return op_hold(p, o, (int)(o - p->ops));
  case OP_HELD_CHDIR: return op_held_chdir(p);
  case OP_HELD_EXEC: return op_held_exec(p);
  case OP_TAKE_FD:
    if (p->slots[o->n[1]] >= 0) close(p->slots[o->n[1]]);
    p->slots[o->n[1]] = (int)o->n[0];
    return 0;
  case OP_USERNS_ROOT:
    if (o->nn < 3) break;
    if (o->n[0] && syscall(SYS_setgroups, 0, NULL) < 0) return -1;
    if (o->n[1] && syscall(SYS_setresgid, 0, 0, 0) < 0) return -1;
    if (o->n[2] && syscall(SYS_setresuid, 0, 0, 0) < 0) return -1;
    return 0;
  case OP_KEEP_ON_EXEC:
    for (int i = 0; i < o->nn; i++)
      if (fcntl((int)o->n[i], F_SETFD, 0) < 0) return -1;
    return 0;
  case OP_CLOSE:
    if (o->nn > 0 && o->n[0] == -1) return close_others(p, o);
    for (int i = 0; i < o->nn; i++)
      if (close((int)o->n[i]) < 0) return -1;
    return 0;
  }
  errno = EINVAL;
  return -1;
}

void plan_run(struct plan *p) {
  /* Signal handlers are Node's: put every signal back to its default, then unblock. */
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, 0);
  if (p->sync_peer >= 0) close(p->sync_peer);

  for (int i = 0; i < p->nops; i++) {
    struct op *o = &p->ops[i];
    if (run_op(p, o) == 0) i += o->alt; /* worked: skip its fallback */
    else if (!o->alt) fail(p, i, errno);
  }
  fail(p, p->nops, ENOEXEC); /* a plan must end in exec */
}
