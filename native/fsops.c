/* File-system calls relative to directory fds, for applying image layers: paths are resolved
 * inside a root with openat2(RESOLVE_IN_ROOT), and every entry is made by name under an already
 * resolved parent fd, so no joined path string is ever followed. One syscall per function. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "throw.h"


#define MAXARGS 6
#define STR_MAX 4096

struct call {
  napi_value a[MAXARGS];
  char s[3][STR_MAX];
};

static int get_args(napi_env env, napi_callback_info info, struct call *c) {
  size_t argc = MAXARGS;
  napi_get_cb_info(env, info, &argc, c->a, NULL, NULL);
  for (size_t i = argc; i < MAXARGS; i++) napi_get_undefined(env, &c->a[i]);
  return 0;
}

static int64_t i64(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return (int64_t)d;
}

/* Copies a JS string into buf; -1 (and a thrown error) when it is not a string or too long. */
static int str(napi_env env, napi_value v, char *buf) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return -1;
  }
  if (len >= STR_MAX) {
    throw_errno(env, "path", ENAMETOOLONG);
    return -1;
  }
  napi_get_value_string_utf8(env, v, buf, STR_MAX, &len);
  if (strlen(buf) != len) {
    napi_throw_type_error(env, NULL, "string contains a NUL byte");
    return -1;
  }
  return 0;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

#define ARGS struct call c; get_args(env, info, &c)
#define STR(i, k) if (str(env, c.a[i], c.s[k]) < 0) return NULL
#define CHECK(rc, name) if ((rc) < 0) return throw_errno(env, name, errno)

/* openIn(rootFd, path, flags, mode, resolve): openat2 resolving inside rootFd; returns an fd. */
static napi_value OpenIn(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  struct open_how how = {
    .flags = (uint64_t)(i64(env, c.a[2]) | O_CLOEXEC),
    .mode = (uint64_t)i64(env, c.a[3]),
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (uint64_t)i64(env, c.a[4]),
  };
  if (!(how.flags & (O_CREAT | O_TMPFILE))) how.mode = 0;
  int fd;
  do fd = syscall(SYS_openat2, (int)i64(env, c.a[0]), c.s[0], &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  CHECK(fd, "openat2");
  return num(env, fd);
}

/* openAt(dirFd, name, flags, mode): plain openat of one name under a resolved parent. */
static napi_value OpenAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  int fd = openat((int)i64(env, c.a[0]), c.s[0], (int)i64(env, c.a[2]) | O_CLOEXEC, (mode_t)i64(env, c.a[3]));
  CHECK(fd, "openat");
  return num(env, fd);
}

static napi_value MkdirAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  CHECK(mkdirat((int)i64(env, c.a[0]), c.s[0], (mode_t)i64(env, c.a[2])), "mkdirat");
  return NULL;
}

/* symlinkAt(target, dirFd, name) */
static napi_value SymlinkAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(0, 0);
  STR(2, 1);
  CHECK(symlinkat(c.s[0], (int)i64(env, c.a[1]), c.s[1]), "symlinkat");
  return NULL;
}

/* linkAt(oldDirFd, oldName, newDirFd, newName): never follows oldName if it is a symlink. */
static napi_value LinkAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  STR(3, 1);
  CHECK(linkat((int)i64(env, c.a[0]), c.s[0], (int)i64(env, c.a[2]), c.s[1], 0), "linkat");
  return NULL;
}

/* mknodAt(dirFd, name, mode (with S_IF*), major, minor) */
static napi_value MknodAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  dev_t dev = makedev((unsigned)i64(env, c.a[3]), (unsigned)i64(env, c.a[4]));
  CHECK(mknodat((int)i64(env, c.a[0]), c.s[0], (mode_t)i64(env, c.a[2]), dev), "mknodat");
  return NULL;
}

/* lchownAt(dirFd, name, uid, gid): the entry itself, never a symlink's target; "" means dirFd. */
static napi_value LchownAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  int flags = AT_SYMLINK_NOFOLLOW | (c.s[0][0] ? 0 : AT_EMPTY_PATH);
  CHECK(fchownat((int)i64(env, c.a[0]), c.s[0], (uid_t)i64(env, c.a[2]), (gid_t)i64(env, c.a[3]), flags), "fchownat");
  return NULL;
}

/* fchmodFd(fd, mode): chmod of the inode an fd (O_PATH too) refers to; refused on a symlink. */
static napi_value FchmodFd(napi_env env, napi_callback_info info) {
  ARGS;
  int fd = (int)i64(env, c.a[0]);
  mode_t mode = (mode_t)i64(env, c.a[1]);
  struct stat st;
  CHECK(fstat(fd, &st), "fstat");
  if (S_ISLNK(st.st_mode)) return throw_errno(env, "fchmod", ELOOP);
  if (fchmod(fd, mode) == 0) return NULL;
  if (errno != EBADF) return throw_errno(env, "fchmod", errno);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  CHECK(fchmodat(AT_FDCWD, proc, mode, 0), "fchmodat");
  return NULL;
}

/* utimensAt(dirFd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec): not following symlinks. */
static napi_value UtimensAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  struct timespec ts[2] = {
    { .tv_sec = i64(env, c.a[2]), .tv_nsec = i64(env, c.a[3]) },
    { .tv_sec = i64(env, c.a[4]), .tv_nsec = i64(env, c.a[5]) },
  };
  int fd = (int)i64(env, c.a[0]);
  /* A NULL path means the fd itself (glibc's wrapper refuses NULL, the syscall does not). */
  long rc = c.s[0][0] ? utimensat(fd, c.s[0], ts, AT_SYMLINK_NOFOLLOW) : syscall(SYS_utimensat, fd, NULL, ts, 0);
  CHECK(rc, "utimensat");
  return NULL;
}

/* unlinkAt(dirFd, name, flags): AT_REMOVEDIR (0x200) for a directory. */
static napi_value UnlinkAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  CHECK(unlinkat((int)i64(env, c.a[0]), c.s[0], (int)i64(env, c.a[2])), "unlinkat");
  return NULL;
}

/* renameAt(oldDirFd, oldName, newDirFd, newName) */
static napi_value RenameAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  STR(3, 1);
  CHECK(renameat((int)i64(env, c.a[0]), c.s[0], (int)i64(env, c.a[2]), c.s[1]), "renameat");
  return NULL;
}

/* statAt(dirFd, name): { mode, uid, gid, size, nlink, ino } of the entry itself, or null if missing. */
static napi_value StatAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  struct stat st;
  int flags = AT_SYMLINK_NOFOLLOW | (c.s[0][0] ? 0 : AT_EMPTY_PATH);
  if (fstatat((int)i64(env, c.a[0]), c.s[0], &st, flags) < 0) {
    napi_value n;
    if (errno == ENOENT) return napi_get_null(env, &n), n;
    return throw_errno(env, "fstatat", errno);
  }
  napi_value r;
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "mode", num(env, st.st_mode));
  napi_set_named_property(env, r, "uid", num(env, st.st_uid));
  napi_set_named_property(env, r, "gid", num(env, st.st_gid));
  napi_set_named_property(env, r, "size", num(env, (double)st.st_size));
  napi_set_named_property(env, r, "nlink", num(env, (double)st.st_nlink));
  napi_set_named_property(env, r, "ino", num(env, (double)st.st_ino));
  return r;
}

/* fsetxattr(fd, name, value: Buffer). An O_PATH fd (a symlink, a device node) takes no fsetxattr:
 * then through its /proc/self/fd link, which names that very inode and is not followed further. */
static napi_value Fsetxattr(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, c.a[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a Buffer");
    return NULL;
  }
  int fd = (int)i64(env, c.a[0]);
  int rc = fsetxattr(fd, c.s[0], data, len, 0);
  if (rc < 0 && errno == EBADF && fd >= 0) {
    snprintf(c.s[1], STR_MAX, "/proc/self/fd/%d", fd);
    rc = setxattr(c.s[1], c.s[0], data, len, 0);
  }
  CHECK(rc, "fsetxattr");
  return NULL;
}

/* readlinkAt(dirFd, name): a symlink's target. */
static napi_value ReadlinkAt(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  ssize_t n = readlinkat((int)i64(env, c.a[0]), c.s[0], c.s[1], STR_MAX - 1);
  CHECK(n, "readlinkat");
  napi_value r;
  napi_create_string_utf8(env, c.s[1], (size_t)n, &r);
  return r;
}

/* fgetxattr(fd, name): the value as a Buffer, or null when the attribute is not set. An O_PATH fd
 * through its /proc/self/fd link, as Fsetxattr. */
static napi_value Fgetxattr(napi_env env, napi_callback_info info) {
  ARGS;
  STR(1, 0);
  int fd = (int)i64(env, c.a[0]);
  ssize_t n = fgetxattr(fd, c.s[0], c.s[1], STR_MAX);
  if (n < 0 && errno == EBADF && fd >= 0) {
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = getxattr(path, c.s[0], c.s[1], STR_MAX);
  }
  napi_value r;
  if (n < 0 && errno == ENODATA) return napi_get_null(env, &r), r;
  CHECK(n, "fgetxattr");
  void *data;
  napi_create_buffer_copy(env, (size_t)n, c.s[1], &data, &r);
  return r;
}

/* flistxattr(fd): the names of its extended attributes (O_PATH fds through /proc/self/fd). */
static napi_value Flistxattr(napi_env env, napi_callback_info info) {
  ARGS;
  int fd = (int)i64(env, c.a[0]);
  ssize_t n = flistxattr(fd, c.s[0], STR_MAX);
  if (n < 0 && errno == EBADF && fd >= 0) {
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = listxattr(path, c.s[0], STR_MAX);
  }
  if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) n = 0;
  CHECK(n, "flistxattr");
  napi_value r;
  napi_create_array(env, &r);
  uint32_t i = 0;
  for (ssize_t off = 0; off < n;) {
    size_t len = strnlen(c.s[0] + off, (size_t)(n - off));
    napi_value name;
    napi_create_string_utf8(env, c.s[0] + off, len, &name);
    napi_set_element(env, r, i++, name);
    off += (ssize_t)len + 1;
  }
  return r;
}

#define FN(name, f) { name, NULL, f, NULL, NULL, NULL, napi_default, NULL }

void fsops_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    FN("openIn", OpenIn), FN("openAt", OpenAt), FN("mkdirAt", MkdirAt), FN("symlinkAt", SymlinkAt),
    FN("linkAt", LinkAt), FN("mknodAt", MknodAt), FN("lchownAt", LchownAt), FN("fchmodFd", FchmodFd),
    FN("utimensAt", UtimensAt), FN("unlinkAt", UnlinkAt), FN("renameAt", RenameAt), FN("statAt", StatAt),
    FN("fsetxattr", Fsetxattr), FN("fgetxattr", Fgetxattr), FN("flistxattr", Flistxattr),
    FN("readlinkAt", ReadlinkAt),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
