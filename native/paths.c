/* Child-side ops for mounts inside the container's root, safe against symlinks: a target is
 * resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) and the mount is attached to the
 * file descriptor (move_mount with MOVE_MOUNT_T_EMPTY_PATH), so a symlink swapped in after the
 * check cannot redirect it. Raw syscalls only: this runs between clone() and execve(). */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESOLVE_SAFE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static int close_keep_errno(int fd) {
  int e = errno;
  if (fd >= 0) close(fd);
  errno = e;
  return -1;
}

static int openat2_in(int root, const char *path, int flags, int nosym) {
  struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_SAFE | (nosym ? RESOLVE_NO_SYMLINKS : 0) };
  return syscall(SYS_openat2, root, path, &how, sizeof how);
}

#define PATH_BUF 4096

static size_t str_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* One walk over buf, creating what is missing. Returns the fd, -1 on error, or -2 after rewriting
 * buf because a component is a dangling symlink: its target (resolved in the root like the rest)
 * takes its place, so `a -> /b/c` with /b/c missing creates /b/c inside the root, as docker does. */
static int walk(int root, char *buf, int make, int nosym) {
  size_t len = str_len(buf);
  int dir = openat2_in(root, "/", O_PATH, nosym);
  if (dir < 0) return -1;
  size_t i = 0;
  while (i < len) {
    while (i < len && buf[i] == '/') i++;
    if (i >= len) break;
    size_t start = i;
    while (i < len && buf[i] != '/') i++;
    int last = i >= len;
    char saved = buf[i];
    buf[i] = 0; /* buf is now the prefix up to this component; buf + start is its name */
    int next = openat2_in(root, buf, O_PATH, nosym);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (last && make == OPEN_AT_FILE) {
        rc = openat(dir, buf + start, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (rc >= 0) close(rc);
      } else {
        rc = mkdirat(dir, buf + start, 0755);
      }
      if (rc < 0 && errno == EEXIST && !nosym) {
        char link[PATH_BUF], out[PATH_BUF];
        ssize_t n = readlinkat(dir, buf + start, link, sizeof link - 1);
        if (n > 0) {
          link[n] = 0;
          buf[i] = saved;
          /* out = (link absolute ? "" : the parent's path) + link + the rest */
          size_t o = 0, keep = link[0] == '/' ? 0 : start, rest = len - i;
          if (keep + (size_t)n + 1 + rest >= sizeof out) {
            close(dir);
            errno = ENAMETOOLONG;
            return -1;
          }
          for (size_t k = 0; k < keep; k++) out[o++] = buf[k];
          for (ssize_t k = 0; k < n; k++) out[o++] = link[k];
          out[o++] = '/';
          for (size_t k = i; k < len; k++) out[o++] = buf[k];
          out[o] = 0;
          for (size_t k = 0; k <= o; k++) buf[k] = out[k];
          close(dir);
          return -2;
        }
        errno = EEXIST;
      }
      if (rc < 0 && errno != EEXIST) return close_keep_errno(dir);
      next = openat2_in(root, buf, O_PATH, nosym);
    }
    buf[i] = saved;
    close(dir);
    if (next < 0) return -1;
    dir = next;
  }
  return dir;
}

/* O_PATH fd of PATH inside the root; with `make` the missing components are created (directories,
 * and with make == OPEN_AT_FILE an empty file last), each one under its resolved parent. */
static int open_in_root(const char *path, int make, int nosym) {
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -1;
  int fd = openat2_in(root, path, O_PATH, nosym);
  if (fd >= 0 || errno != ENOENT || !make) {
    if (fd < 0) return close_keep_errno(root);
    close(root);
    return fd;
  }
  char buf[PATH_BUF];
  size_t len = str_len(path);
  if (len >= sizeof buf) {
    close(root);
    errno = ENAMETOOLONG;
    return -1;
  }
  for (size_t i = 0; i <= len; i++) buf[i] = path[i];
  for (int tries = 0; tries < 40; tries++) {
    fd = walk(root, buf, make, nosym);
    if (fd != -2) {
      if (fd < 0) return close_keep_errno(root);
      close(root);
      return fd;
    }
  }
  close(root);
  errno = ELOOP;
  return -1;
}

static int slot_ok(int64_t s) { return s >= 0 && s < PLAN_SLOTS; }

int op_open_at(struct plan *p, struct op *o) {
  int how = (int)o->n[1];
  if (p->slots[o->n[0]] >= 0) close(p->slots[o->n[0]]); /* a reused slot */
  p->slots[o->n[0]] = -1;
  int fd = open_in_root(o->s[0], how & 3, how & OPEN_AT_NOSYMLINKS);
  if (fd < 0) {
    if (errno == ENOENT && (how & OPEN_AT_OPTIONAL)) {
      p->slots[o->n[0]] = -1;
      return 0;
    }
    return -1;
  }
  p->slots[o->n[0]] = fd;
  return 0;
}

/* Attach the detached mount in slot n[0] onto the file in slot n[1]; both are closed. A target
 * left empty by an optional open makes this a no-op. */
int op_move_mount_to(struct plan *p, struct op *o) {
  int from = p->slots[o->n[0]], to = p->slots[o->n[1]];
  p->slots[o->n[0]] = p->slots[o->n[1]] = -1;
  if (to < 0 || from < 0) {
    if (from >= 0) close(from);
    if (to >= 0) close(to);
    return 0;
  }
  int rc = syscall(SYS_move_mount, from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int e = errno;
  close(from);
  close(to);
  errno = e;
  return rc < 0 ? -1 : 0;
}

/* A new detached filesystem: s = fstype, then "key=value" or "flag" options; n = slot, attrs. */
int op_fsmount(struct plan *p, struct op *o) {
  int fs = syscall(SYS_fsopen, o->s[0], FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  for (int i = 1; i < o->ns; i++) {
    char *k = o->s[i], *v = k;
    while (*v && *v != '=') v++;
    int rc;
    if (*v) {
      *v = 0; /* our own copy of the plan: fine to split in place */
      rc = syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, k, v + 1, 0);
      *v = '=';
    } else {
      rc = syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, k, NULL, 0);
    }
    if (rc < 0) return close_keep_errno(fs);
  }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) return close_keep_errno(fs);
  int m = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, (unsigned)o->n[1]);
  if (m < 0) return close_keep_errno(fs);
  close(fs);
  p->slots[o->n[0]] = m;
  return 0;
}

/* A detached copy of the mount at the O_PATH fd in slot n[0] into slot n[1]; n[2]: recursive. */
int op_clone_tree(struct plan *p, struct op *o) {
  int from = p->slots[o->n[0]];
  if (from < 0) {
    p->slots[o->n[1]] = -1;
    return 0;
  }
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (o->n[2] ? AT_RECURSIVE : 0);
  int fd = syscall(SYS_open_tree, from, "", flags);
  if (fd < 0) return -1;
  p->slots[o->n[1]] = fd;
  return 0;
}

/* mount_setattr on the mount in slot n[0]: n = slot, attr_set, attr_clr, recursive. */
int op_setattr_slot(struct plan *p, struct op *o) {
  int fd = p->slots[o->n[0]];
  if (fd < 0) return 0;
  struct mount_attr a = { .attr_set = (uint64_t)o->n[1], .attr_clr = (uint64_t)o->n[2] };
  return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (o->n[3] ? AT_RECURSIVE : 0), &a, sizeof a) < 0 ? -1 : 0;
}

/* Checks one of these ops before clone: 0 when it has its arguments and its slots are in range. */
int check_path_op(struct op *o) {
  int nn, ns = 0, slots;
  switch (o->kind) {
  case OP_OPEN_AT: nn = 2; ns = 1; slots = 1; break;
  case OP_MOVE_MOUNT_TO: nn = 2; slots = 2; break;
  case OP_FSMOUNT: nn = 2; ns = 1; slots = 1; break;
  case OP_CLONE_TREE: nn = 3; slots = 2; break;
  case OP_SETATTR_SLOT: nn = 4; slots = 1; break;
  default: return 0;
  }
  if (o->nn < nn || o->ns < ns) return -1;
  for (int i = 0; i < slots; i++) if (!slot_ok(o->n[i])) return -1;
  return 0;
}
