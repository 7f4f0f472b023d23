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
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
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
  struct open_how how = {
    .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_SAFE | (nosym ? RESOLVE_NO_SYMLINKS : 0),
  };
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
  struct stat st;
  struct statfs sf;
  if ((how & OPEN_AT_DIR) && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
    close(fd);
    errno = ENOTDIR;
    return -1;
  }
  if ((how & OPEN_AT_NOT_KERNFS)
      && (fstatfs(fd, &sf) < 0 || sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC)) {
    close(fd);
    errno = EXDEV;
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
  if (o->nn > 4) a.propagation = (uint64_t)o->n[4]; /* MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE */
  return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (o->n[3] ? AT_RECURSIVE : 0), &a, sizeof a) < 0 ? -1 : 0;
}

/* OP_CHDIR_IN_ROOT: the working directory, opened in the root without magic links (so no leaked
 * fd's /proc/self/fd/N can stand in for it) and entered with fchdir; then the kernel's own view of
 * it must be under the root: getcwd says "(unreachable)" otherwise (runc's CVE-2024-21626 check). */
int op_chdir_in_root(struct plan *p, struct op *o) {
  (void)p;
  int fd = open_in_root(o->s[0], o->n[0] ? OPEN_AT_DIR : 0, 0);
  if (fd < 0) return -1;
  int rc = fchdir(fd);
  close_keep_errno(fd);
  if (rc < 0) return -1;
  char buf[PATH_BUF];
  if (syscall(SYS_getcwd, buf, sizeof buf) < 0) return -1;
  if (buf[0] != '/') {
    errno = EXDEV;
    return -1;
  }
  return 0;
}

/* Relative to a directory (a mount) we hold: never above it, no symlink, no mount crossed. */
static int openat2_beneath(int dir, const char *path, int flags, int xdev) {
  struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (xdev ? 0 : RESOLVE_NO_XDEV) };
  return syscall(SYS_openat2, dir, path, &how, sizeof how);
}

/* Create the last component of `path` (under its parent, resolved beneath dir): a directory or an empty file. */
static int make_beneath(int dir, const char *path, int file) {
  char buf[PATH_BUF];
  size_t len = str_len(path), cut = 0;
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (size_t i = 0; i <= len; i++) {
    buf[i] = path[i];
    if (path[i] == '/') cut = i + 1;
  }
  int parent = dir;
  if (cut > 0) {
    buf[cut - 1] = 0;
    parent = openat2_beneath(dir, buf, O_PATH | O_DIRECTORY, 0);
    if (parent < 0) return -1;
  }
  int rc = file ? mknodat(parent, buf + cut, S_IFREG | 0644, 0) : mkdirat(parent, buf + cut, 0755);
  if (rc < 0 && errno == EEXIST) rc = 0;
  if (parent != dir) {
    int e = errno;
    close(parent);
    errno = e;
  }
  return rc;
}

int op_open_beneath(struct plan *p, struct op *o) {
  int dir = p->slots[o->n[0]], how = (int)o->n[2];
  if (p->slots[o->n[1]] >= 0) close(p->slots[o->n[1]]);
  p->slots[o->n[1]] = -1;
  if (dir < 0) {
    errno = EBADF;
    return -1;
  }
  int xdev = how & OPEN_AT_XDEV;
  int fd = openat2_beneath(dir, o->s[0], O_PATH, xdev);
  if (fd < 0 && errno == ENOENT && (how & (OPEN_AT_DIR | OPEN_AT_FILE))) {
    if (make_beneath(dir, o->s[0], how & OPEN_AT_FILE) < 0) return -1;
    fd = openat2_beneath(dir, o->s[0], O_PATH, xdev);
  }
  if (fd < 0) return errno == ENOENT && (how & OPEN_AT_OPTIONAL) ? 0 : -1;
  struct stat st;
  if ((how & OPEN_AT_DIR) && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
    close(fd);
    errno = ENOTDIR;
    return -1;
  }
  p->slots[o->n[1]] = fd;
  return 0;
}

/* Attach the detached mount in slot n[0] onto the O_PATH fd in slot n[1] (closed); the mount's fd
 * stays in its slot, so what is done next inside it is relative to it, not to a path. */
int op_attach(struct plan *p, struct op *o) {
  int from = p->slots[o->n[0]], to = p->slots[o->n[1]];
  p->slots[o->n[1]] = -1;
  if (from < 0 || to < 0) {
    if (to >= 0) close(to);
    errno = EBADF;
    return -1;
  }
  int rc = syscall(SYS_move_mount, from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  close_keep_errno(to);
  return rc < 0 ? -1 : 0;
}

/* A node of our own in a directory we hold; the mode is set after, whatever the umask. */
int op_mknod_at(struct plan *p, struct op *o) {
  int dir = p->slots[o->n[0]];
  if (dir < 0) {
    errno = EBADF;
    return -1;
  }
  mode_t mode = (mode_t)o->n[1];
  if (mknodat(dir, o->s[0], mode, makedev((unsigned)o->n[2], (unsigned)o->n[3])) < 0) return -1;
  if (fchmodat(dir, o->s[0], mode & 07777, 0) < 0) return -1;
  if ((o->n[4] >= 0 || o->n[5] >= 0) && fchownat(dir, o->s[0], (uid_t)o->n[4], (gid_t)o->n[5], AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  return 0;
}

int op_symlink_at(struct plan *p, struct op *o) {
  int dir = p->slots[o->n[0]];
  if (dir < 0) {
    errno = EBADF;
    return -1;
  }
  return symlinkat(o->s[0], dir, o->s[1]);
}

#define MASK_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)

/* An empty read-only tmpfs, detached. */
static int empty_tmpfs(void) {
  int fs = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "555", 0) < 0
      || syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return close_keep_errno(fs);
  int m = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MASK_ATTRS);
  close_keep_errno(fs);
  return m;
}

/* A read-only bind of the container's own /dev/null (from the /dev we made), after checking it
 * is the null device (runc CVE-2025-31133): read-only, so masked files cannot be re-moded. */
static int null_bind(int dev) {
  int n = openat2_beneath(dev, "null", O_PATH, 1);
  if (n < 0) return -1;
  struct stat st;
  if (fstat(n, &st) < 0) return close_keep_errno(n);
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
    close(n);
    errno = ENODEV;
    return -1;
  }
  int m = syscall(SYS_open_tree, n, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  close_keep_errno(n);
  if (m < 0) return -1;
  struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC };
  if (syscall(SYS_mount_setattr, m, "", AT_EMPTY_PATH, &a, sizeof a) < 0) return close_keep_errno(m);
  return m;
}

/* Mask `path` of the tree in slot n[0] (a /proc or /sys we mounted): a directory with an empty
 * read-only tmpfs, anything else with /dev/null. Absent from that tree: nothing to mask. Any other
 * failure (a symlink, another mount on the way) is an error: a mask is never skipped. */
int op_mask_at(struct plan *p, struct op *o) {
  int tree = p->slots[o->n[0]], dev = p->slots[o->n[1]];
  if (tree < 0 || dev < 0) {
    errno = EBADF;
    return -1;
  }
  int target = openat2_beneath(tree, o->s[0], O_PATH, 0);
  if (target < 0) return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat(target, &st) < 0) return close_keep_errno(target);
  int m = S_ISDIR(st.st_mode) ? empty_tmpfs() : null_bind(dev);
  if (m < 0) return close_keep_errno(target);
  int rc = syscall(SYS_move_mount, m, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  close_keep_errno(m);
  close_keep_errno(target);
  return rc < 0 ? -1 : 0;
}

int op_close_slots(struct plan *p, struct op *o) {
  for (int i = 0; i < o->nn; i++) {
    int fd = p->slots[o->n[i]];
    p->slots[o->n[i]] = -1;
    if (fd >= 0) close(fd);
  }
  return 0;
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
  case OP_CHDIR_IN_ROOT: nn = 1; ns = 1; slots = 0; break;
  case OP_OPEN_BENEATH: nn = 3; ns = 1; slots = 2; break;
  case OP_ATTACH: nn = 2; slots = 2; break;
  case OP_MKNOD_AT: nn = 6; ns = 1; slots = 1; break;
  case OP_SYMLINK_AT: nn = 1; ns = 2; slots = 1; break;
  case OP_MASK_AT: nn = 2; ns = 1; slots = 2; break;
  case OP_CLOSE_SLOTS: nn = 0; slots = o->nn; break;
  default: return 0;
  }
  if (o->nn < nn || o->ns < ns) return -1;
  for (int i = 0; i < slots; i++) if (!slot_ok(o->n[i])) return -1;
  return 0;
}
