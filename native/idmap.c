/* Idmapped mounts for containers from images in a user namespace (root's --userns): a user
 * namespace with the container's maps, held by fd, and a detached read-only clone of a tree whose
 * ids are seen through it. Made by the parent (root in the host's namespace, as mount_setattr
 * wants) before clone; the child inherits the mount's fd and attaches it in its own namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "throw.h"

#define TEXT_MAX 4096

static int text(napi_env env, napi_value v, char *buf) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len >= TEXT_MAX) {
    napi_throw_type_error(env, NULL, "expected a string shorter than 4096 bytes");
    return -1;
  }
  napi_get_value_string_utf8(env, v, buf, TEXT_MAX, &len);
  return 0;
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(data);
  ssize_t n = write(fd, data, len);
  int e = errno;
  close(fd);
  if (n == (ssize_t)len) return 0;
  errno = n < 0 ? e : EIO;
  return -1;
}

/* usernsFd(uidMap, gidMap): an fd of a new user namespace with these maps ("C H S\n" lines). A
 * child made for it (no exit signal, so libuv never sees it) waits on a pipe while its maps are
 * written and its namespace opened, then exits and is reaped here. */
static napi_value UsernsFd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  static char uid_map[TEXT_MAX], gid_map[TEXT_MAX];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 2 || text(env, a[0], uid_map) < 0 || text(env, a[1], gid_map) < 0) return NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", errno);
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER, NULL, NULL, NULL, NULL);
  if (pid == 0) {
    char c;
    close(p[1]);
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  int e = errno;
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    return throw_errno(env, "clone(CLONE_NEWUSER)", e);
  }
  char path[64];
  const char *call = "uid_map";
  int fd = -1;
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  if (write_file(path, uid_map) == 0) {
    call = "gid_map";
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    if (write_file(path, gid_map) == 0) {
      call = "open ns/user";
      snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
      fd = open(path, O_RDONLY | O_CLOEXEC);
    }
  }
  e = errno;
  close(p[1]);
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {
  }
  if (fd < 0) return throw_errno(env, call, e);
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/* idmappedTree(path, usernsFd, attrSet): a detached clone of the mount at `path` (not recursive),
 * its ids mapped through the namespace, with MOUNT_ATTR_* `attrSet` (read-only, nodev, nosuid).
 * `path` is a realpath: a symlink met on the way means it was swapped since, so it is refused (as the
 * plan's bind sources are, OPEN_AT_NOSYMLINKS). */
static napi_value IdmappedTree(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  static char path[TEXT_MAX];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t userns = -1;
  uint32_t attrs = 0;
  if (argc < 3 || text(env, a[0], path) < 0) return NULL;
  napi_get_value_int32(env, a[1], &userns);
  napi_get_value_uint32(env, a[2], &attrs);
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
  int src = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  if (src < 0) return throw_errno(env, "openat2", errno);
  int fd = (int)syscall(SYS_open_tree, src, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  int oe = errno;
  close(src);
  if (fd < 0) return throw_errno(env, "open_tree", oe);
  struct mount_attr ma = { .attr_set = MOUNT_ATTR_IDMAP | attrs, .userns_fd = (uint64_t)userns };
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &ma, sizeof ma) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "mount_setattr(MOUNT_ATTR_IDMAP)", e);
  }
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

void idmap_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "usernsFd", NULL, UsernsFd, NULL, NULL, NULL, napi_default, NULL },
    { "idmappedTree", NULL, IdmappedTree, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
