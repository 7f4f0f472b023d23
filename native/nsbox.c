/* nsbox's addon: a thin N-API layer over the Linux syscalls a container needs.
 * Policy lives in TypeScript; this file only copies plans into C memory, clones, and
 * exposes single syscalls. */
#define _GNU_SOURCE
#include "plan.h"
#include "throw.h"

#include <endian.h>
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

static napi_value errno_error(napi_env env, const char *call, int err) {
  char msg[1024];
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
  return e;
}

napi_value throw_errno(napi_env env, const char *call, int err) {
  napi_throw(env, errno_error(env, call, err));
  return NULL;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { /* a NUL inside would silently cut the string at the syscall */
    free(s);
    return NULL;
  }
  return s;
}

/* A whole number in [min, max] (a double is exact to 2^53); else throws a TypeError or RangeError. */
static bool int_arg(napi_env env, napi_value v, const char *what, double min, double max, int64_t *out) {
  napi_valuetype t;
  double d;
  napi_typeof(env, v, &t);
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) {
    char m[160];
    snprintf(m, sizeof m, "%s must be a number", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", m);
    return false;
  }
  if (!(d >= min && d <= max) || d != (double)(int64_t)d) {
    char m[160];
    snprintf(m, sizeof m, "%s must be a whole number from %.0f to %.0f", what, min, max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", m);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

#define INT_MAX_D 2147483647.0
#define SAFE_D 9007199254740991.0
#define INT_ARG(v, what, min, max, out) if (!int_arg(env, v, what, min, max, &out)) return NULL

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
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) {
    napi_value ex; /* a getter that threw, or not an object: read as undefined */
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) napi_get_and_clear_last_exception(env, &ex);
    napi_get_undefined(env, &v);
  }
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
    if (!p->wire)
      for (int j = 0; j < o->ns; j++) free(o->s[j]);
    free(o->s);
    free(o->n);
    free(o->b);
    free(o->argv);
    free(o->envp);
  }
  free(p->ops);
  free(p->wire);
  free(p->cmd);
  free(p->cmd_ptrs);
  free(p);
}

/* What each op kind takes (native/plan.h): strings and numbers (min, max), numbers that are fds
 * or slots, and each number's range otherwise. A plan comes from JavaScript (nsbox/native is
 * public): anything else is refused here, before clone, never dereferenced by the child. A new
 * op kind needs a row, or every plan using it is refused. */
enum num_kind { NONE = 0, ANY, FLAGS, FD, SLOT, U32, BOOL, FD_OR_MINUS1, RLIM };

struct op_args {
  int smin, smax, nmin, nmax;
  enum num_kind n[10]; /* the kind of n[i]; the last one given repeats */
};

#define S(a, b) a, b
#define N(a, b) a, b
static const struct op_args OP_ARGS[] = {
  [OP_MOUNT] = { S(4, 4), N(1, 1), { FLAGS } },
  [OP_MKDIR] = { S(1, 1), N(1, 1), { U32 } },
  [OP_PIVOT_ROOT] = { S(1, 1), N(0, 0), { NONE } },
  [OP_UMOUNT] = { S(1, 1), N(1, 1), { U32 } },
  [OP_SETHOSTNAME] = { S(1, 1), N(0, 0), { NONE } },
  [OP_LOOPBACK_UP] = { S(0, 0), N(0, 0), { NONE } },
  [OP_DUP2] = { S(0, 0), N(2, 2), { FD, FD } },
  [OP_CHDIR] = { S(1, 1), N(0, 0), { NONE } },
  [OP_SETRLIMIT] = { S(0, 0), N(3, 3), { U32, RLIM, RLIM } },
  [OP_EXEC] = { S(1, 1 << 22), N(2, 2), { U32, U32 } },
  [OP_SYMLINK] = { S(2, 2), N(0, 0), { NONE } },
  [OP_CREATE_FILE] = { S(1, 1), N(1, 1), { U32 } },
  [OP_SETATTR] = { S(1, 1), N(3, 3), { FLAGS, FLAGS, BOOL } },
  [OP_WAIT_SYNC] = { S(0, 0), N(0, 0), { NONE } },
  [OP_SETSID] = { S(0, 0), N(0, 0), { NONE } },
  [OP_SETNS] = { S(0, 0), N(2, 2), { FD, U32 } },
  [OP_UNSHARE] = { S(0, 0), N(1, 1), { U32 } },
  [OP_PRCTL] = { S(0, 0), N(1, 5), { U32, ANY } },
  [OP_SETGROUPS] = { S(0, 0), N(0, 64), { U32 } },
  [OP_SETRESGID] = { S(0, 0), N(1, 1), { U32 } },
  [OP_SETRESUID] = { S(0, 0), N(1, 1), { U32 } },
  [OP_CAPS] = { S(0, 0), N(10, 10), { U32 } },
  [OP_SECCOMP] = { S(0, 0), N(0, 1), { U32 } },
  [OP_CLOSE_FDS] = { S(0, 0), N(1, 1), { FD } },
  [OP_OPEN_TREE] = { S(1, 1), N(2, 2), { SLOT, BOOL } },
  [OP_MOVE_MOUNT] = { S(1, 1), N(1, 1), { SLOT } },
  [OP_INIT] = { S(0, 0), N(0, 0), { NONE } },
  [OP_UMASK] = { S(0, 0), N(1, 1), { U32 } },
  [OP_WRITE_FILE] = { S(2, 2), N(0, 0), { NONE } },
  [OP_SET_TTY] = { S(0, 0), N(1, 1), { FD } },
  [OP_CLOSE] = { S(0, 0), N(0, 17), { FD_OR_MINUS1, FD } },
  [OP_OPEN_AT] = { S(1, 1), N(2, 2), { SLOT, U32 } },
  [OP_MOVE_MOUNT_TO] = { S(0, 0), N(2, 2), { SLOT, SLOT } },
  [OP_FSMOUNT] = { S(1, 64), N(2, 2), { SLOT, FLAGS } },
  [OP_CLONE_TREE] = { S(0, 0), N(3, 3), { SLOT, SLOT, BOOL } },
  [OP_SETATTR_SLOT] = { S(0, 0), N(4, 5), { SLOT, FLAGS, FLAGS, BOOL, U32 } },
  [OP_USERNS_ROOT] = { S(0, 0), N(3, 3), { BOOL } },
  [OP_CHDIR_IN_ROOT] = { S(1, 1), N(1, 1), { BOOL } },
  [OP_OPEN_BENEATH] = { S(1, 1), N(3, 3), { SLOT, SLOT, U32 } },
  [OP_ATTACH] = { S(0, 0), N(2, 2), { SLOT, SLOT } },
  [OP_MKNOD_AT] = { S(1, 1), N(6, 6), { SLOT, U32, U32, U32, RLIM, RLIM } },
  [OP_SYMLINK_AT] = { S(2, 2), N(1, 1), { SLOT } },
  [OP_MASK_AT] = { S(1, 1), N(2, 2), { SLOT, SLOT } },
  [OP_CLOSE_SLOTS] = { S(0, 0), N(0, 64), { SLOT } },
  [OP_HOLD_OPEN] = { S(1, 1), N(1, 1), { SLOT } },
  [OP_HOLD] = { S(0, 0), N(1, 2), { SLOT, U32 } },
  [OP_HELD_CHDIR] = { S(0, 0), N(0, 0), { NONE } },
  [OP_HELD_EXEC] = { S(0, 0), N(0, 0), { NONE } },
  [OP_TAKE_FD] = { S(0, 0), N(2, 2), { FD, SLOT } },
  [OP_KEEP_ON_EXEC] = { S(0, 0), N(1, 16), { FD } },
  [OP_PERSONALITY] = { S(0, 0), N(1, 1), { U32 } },
};
#define NKINDS (int)(sizeof OP_ARGS / sizeof OP_ARGS[0])
/* A kind without a row (all zeros) would pass as an op without arguments: refuse it. */
static bool known_kind(int k) {
  if (k < 0 || k >= NKINDS) return false;
  const struct op_args *a = &OP_ARGS[k];
  return a->smax || a->nmax || k == OP_LOOPBACK_UP || k == OP_WAIT_SYNC || k == OP_SETSID || k == OP_INIT
    || k == OP_HELD_CHDIR || k == OP_HELD_EXEC;
}

/* The largest string one op may carry (an argument: the kernel takes 128 KiB; a file's data). */
#define MAX_STRING (1 << 20)
#define MAX_OPS 65536

static void range(double *min, double *max, enum num_kind k) {
  switch (k) {
  case FD: *min = 0; *max = INT_MAX_D; return;
  case FD_OR_MINUS1: *min = -1; *max = INT_MAX_D; return;
  case SLOT: *min = 0; *max = PLAN_SLOTS - 1; return;
  case U32: *min = 0; *max = 4294967295.0; return;
  case BOOL: *min = 0; *max = 1; return;
  case RLIM: *min = -1; *max = SAFE_D; return;
  case FLAGS: *min = 0; *max = SAFE_D; return;
  default: *min = -SAFE_D; *max = SAFE_D; return;
  }
}

/* ---- checks shared by both readers: an op's kind, its counts, each number's range, the rest ---- */

static bool refuse(napi_env env, const char *what) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
  return false;
}

static bool refuse_type(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
}

static bool nomem(napi_env env) {
  napi_throw_error(env, "ENOMEM", "spawn: out of memory");
  return false;
}

static bool check_kind(napi_env env, uint32_t i, int64_t k) {
  if (known_kind((int)k)) return true;
  char what[96];
  snprintf(what, sizeof what, "spawn: ops[%u].op: unknown op %d", i, (int)k);
  return refuse(env, what);
}

static bool check_count(napi_env env, uint32_t i, int kind, const char *things, int min, int max, uint64_t len) {
  if ((int64_t)len >= min && (int64_t)len <= max) return true;
  char what[128];
  snprintf(what, sizeof what, "spawn: ops[%u] (op %d) takes %d to %d %s, got %llu", i, kind, min, max, things,
           (unsigned long long)len);
  return refuse(env, what);
}

/* n[j] of op i: a whole number in the range its kind takes (OP_ARGS), into o->n[j]. */
static bool check_number(napi_env env, uint32_t i, uint32_t j, struct op *o, double d) {
  const struct op_args *want = &OP_ARGS[o->kind];
  double min, max;
  int at = j < 10 ? (int)j : 9;
  while (at > 0 && want->n[at] == NONE) at--;
  range(&min, &max, want->n[at]);
  if (!(d >= min && d <= max) || d != (double)(int64_t)d) {
    char what[160];
    snprintf(what, sizeof what, "spawn: ops[%u].n[%u] (op %d) must be a whole number from %.0f to %.0f", i, j,
             o->kind, min, max);
    return refuse(env, what);
  }
  o->n[j] = (int64_t)d;
  return true;
}

/* Zeros past the end: the child reads a fixed number of some ops' numbers (prctl's five). */
static bool alloc_numbers(napi_env env, struct op *o, uint32_t len) {
  if (!(o->n = calloc(len + 10, sizeof(int64_t)))) return nomem(env);
  o->nn = (int)len;
  return true;
}

/* What holds across an op's arguments, once its strings, numbers and bytes are read. */
static bool check_op(napi_env env, uint32_t i, struct op *o) {
  char what[128];
  if (o->kind == OP_SECCOMP && (!o->b || o->blen == 0 || o->blen % 8 || o->blen / 8 > 4096)) {
    snprintf(what, sizeof what, "spawn: ops[%u]: a seccomp program is 1 to 4096 instructions of 8 bytes", i);
    return refuse(env, what);
  }
  if (o->kind != OP_SECCOMP && o->b) {
    snprintf(what, sizeof what, "spawn: ops[%u] (op %d) takes no bytes", i, o->kind);
    return refuse(env, what);
  }
  if (o->kind == OP_EXEC) {
    int64_t argc = o->n[0], envc = o->n[1];
    if (argc < 1 || argc + envc > o->ns) {
      snprintf(what, sizeof what, "spawn: ops[%u]: exec needs argc >= 1 and argc + envc <= %d strings", i, o->ns);
      return refuse(env, what);
    }
    o->argv = calloc(argc + 1, sizeof(char *));
    o->envp = calloc(envc + 1, sizeof(char *));
    if (!o->argv || !o->envp) return nomem(env);
    for (int j = 0; j < argc; j++) o->argv[j] = o->s[j];
    for (int j = 0; j < envc; j++) o->envp[j] = o->s[argc + j];
  }
  if (o->kind == OP_HOLD && o->nn > 1 && o->n[1] > HOLD_MAX_COMMAND) {
    snprintf(what, sizeof what, "spawn: ops[%u]: a held command takes at most %d bytes", i, HOLD_MAX_COMMAND);
    return refuse(env, what);
  }
  if (o->kind == OP_CLOSE && o->nn > 0 && o->n[0] != -1)
    for (int j = 0; j < o->nn; j++)
      if (o->n[j] < 0) {
        snprintf(what, sizeof what, "spawn: ops[%u].n[%d]: an fd is never negative", i, j);
        return refuse(env, what);
      }
  if (check_path_op(o) < 0) {
    snprintf(what, sizeof what, "spawn: ops[%u] (op %d): arguments out of range", i, o->kind);
    return refuse(env, what);
  }
  return true;
}

static bool bad_string(napi_env env, uint32_t i, uint32_t j) {
  char what[128];
  snprintf(what, sizeof what, "spawn: ops[%u].s[%u] must be a string without NUL bytes, at most %d bytes", i, j,
           MAX_STRING);
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", what);
  return false;
}

/* ---- a plan given as an array of { op, s?, n?, b?, alt? } (nsbox/native's public form) ---- */

/* Reads op `i` into o; false with a JavaScript error thrown when it is not what its kind takes. */
static bool read_op(napi_env env, napi_value v, uint32_t i, uint32_t nops, struct op *o) {
  char what[96];
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_object) {
    snprintf(what, sizeof what, "spawn: ops[%u] must be an object", i);
    return refuse_type(env, what);
  }
  int64_t k;
  snprintf(what, sizeof what, "spawn: ops[%u].op", i);
  if (!int_arg(env, prop(env, v, "op"), what, 0, INT_MAX_D, &k) || !check_kind(env, i, k)) return false;
  o->kind = (int)k;
  const struct op_args *want = &OP_ARGS[o->kind];

  uint32_t len = 0;
  bool arr;
  napi_value a = prop(env, v, "s");
  if (!is_undefined(env, a)) {
    if (napi_is_array(env, a, &arr) != napi_ok || !arr) {
      snprintf(what, sizeof what, "spawn: ops[%u].s must be an array of strings", i);
      return refuse_type(env, what);
    }
    napi_get_array_length(env, a, &len);
  }
  if (!check_count(env, i, o->kind, "strings", want->smin, want->smax, len)) return false;
  if (!(o->s = calloc(len + 1, sizeof(char *)))) return nomem(env);
  for (uint32_t j = 0; j < len; j++) {
    napi_value e;
    size_t sl;
    napi_get_element(env, a, j, &e);
    if (napi_get_value_string_utf8(env, e, NULL, 0, &sl) != napi_ok || sl > MAX_STRING
        || !(o->s[j] = get_string(env, e)))
      return bad_string(env, i, j);
    o->ns = (int)j + 1;
  }

  len = 0;
  a = prop(env, v, "n");
  if (!is_undefined(env, a)) {
    if (napi_is_array(env, a, &arr) != napi_ok || !arr) {
      snprintf(what, sizeof what, "spawn: ops[%u].n must be an array of numbers", i);
      return refuse_type(env, what);
    }
    napi_get_array_length(env, a, &len);
  }
  if (!check_count(env, i, o->kind, "numbers", want->nmin, want->nmax, len) || !alloc_numbers(env, o, len))
    return false;
  for (uint32_t j = 0; j < len; j++) {
    napi_value e;
    napi_valuetype et;
    double d;
    napi_get_element(env, a, j, &e);
    napi_typeof(env, e, &et);
    if (et != napi_number || napi_get_value_double(env, e, &d) != napi_ok) {
      snprintf(what, sizeof what, "spawn: ops[%u].n[%u] (op %d) must be a number", i, j, o->kind);
      return refuse_type(env, what);
    }
    if (!check_number(env, i, j, o, d)) return false;
  }

  a = prop(env, v, "alt");
  if (!is_undefined(env, a)) {
    int64_t alt;
    snprintf(what, sizeof what, "spawn: ops[%u].alt", i);
    if (!int_arg(env, a, what, 0, (double)(nops - i - 1), &alt)) return false;
    o->alt = (int)alt;
  }
  a = prop(env, v, "b");
  if (!is_undefined(env, a)) {
    bool isbuf = false;
    void *data;
    if (napi_is_buffer(env, a, &isbuf) != napi_ok || !isbuf
        || napi_get_buffer_info(env, a, &data, &o->blen) != napi_ok) {
      snprintf(what, sizeof what, "spawn: ops[%u].b must be a Buffer", i);
      return refuse_type(env, what);
    }
    if (!(o->b = malloc(o->blen ? o->blen : 1))) return nomem(env);
    memcpy(o->b, data, o->blen);
  }
  return check_op(env, i, o);
}

static struct plan *new_plan(napi_env env, uint64_t len) {
  if (len == 0 || len > MAX_OPS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "spawn: a plan has 1 to 65536 ops");
    return NULL;
  }
  struct plan *p = calloc(1, sizeof *p);
  if (!p || !(p->ops = calloc(len, sizeof(struct op)))) {
    free(p);
    nomem(env);
    return NULL;
  }
  p->nops = (int)len;
  for (int i = 0; i < PLAN_SLOTS; i++) p->slots[i] = -1;
  return p;
}

/* A command received at release: its buffer and pointers now, as the child may not allocate. */
static bool plan_op_read(napi_env env, struct plan *p, struct op *o) {
  if (o->kind == OP_HOLD && o->nn > 1 && o->n[1] > 0 && !p->cmd) {
    p->cmd_cap = (size_t)o->n[1];
    p->cmd_nptrs = p->cmd_cap / 16 + 3; /* strings of 16 bytes on average, NULs included */
    p->cmd = malloc(p->cmd_cap);
    p->cmd_ptrs = calloc(p->cmd_nptrs, sizeof(char *));
    if (!p->cmd || !p->cmd_ptrs) return nomem(env);
  }
  return true;
}

/* The plan in C memory, or NULL with a JavaScript error thrown. */
static struct plan *read_plan(napi_env env, napi_value ops) {
  uint32_t len;
  bool arr = false;
  if (napi_is_array(env, ops, &arr) != napi_ok || !arr) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: ops must be an array or a Buffer");
    return NULL;
  }
  napi_get_array_length(env, ops, &len);
  struct plan *p = new_plan(env, len);
  if (!p) return NULL;
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    napi_get_element(env, ops, i, &v);
    if (!read_op(env, v, i, len, &p->ops[i]) || !plan_op_read(env, p, &p->ops[i])) {
      free_plan(p);
      return NULL;
    }
  }
  return p;
}

/* ---- a plan given as one Buffer (src/plan/wire.ts), all little-endian:
 *   u32 nops, then per op: u32 kind, alt, ns, nn, nb; ns strings of (u32 len, len bytes, a NUL);
 *   nn numbers as f64; nb - 1 bytes (nb is 0 for an op without bytes, so that empty bytes stay refusable).
 * One copy of the whole; strings point into it. Every count and length is checked against what is left
 * before it is used, and the op against OP_ARGS exactly as the array's. ---- */

struct cursor {
  const uint8_t *at;
  size_t left;
};

static const uint8_t *take(struct cursor *c, size_t n) {
  if (n > c->left) return NULL;
  const uint8_t *r = c->at;
  c->at += n;
  c->left -= n;
  return r;
}

static bool take_u32(struct cursor *c, uint32_t *v) {
  const uint8_t *b = take(c, 4);
  if (b) {
    memcpy(v, b, 4);
    *v = le32toh(*v);
  }
  return b != NULL;
}

static bool truncated(napi_env env, uint32_t i) {
  char what[96];
  snprintf(what, sizeof what, "spawn: ops[%u]: the plan's bytes end inside it", i);
  return refuse(env, what);
}

static bool read_wire_op(napi_env env, struct cursor *c, uint32_t i, uint32_t nops, struct op *o) {
  uint32_t kind, alt, ns, nn, nb;
  if (!take_u32(c, &kind) || !take_u32(c, &alt) || !take_u32(c, &ns) || !take_u32(c, &nn) || !take_u32(c, &nb))
    return truncated(env, i);
  if (!check_kind(env, i, kind > INT_MAX_D ? -1 : (int64_t)kind)) return false;
  o->kind = (int)kind;
  const struct op_args *want = &OP_ARGS[o->kind];
  if (alt > nops - i - 1) {
    char what[96];
    snprintf(what, sizeof what, "spawn: ops[%u].alt must be a whole number from 0 to %u", i, nops - i - 1);
    return refuse(env, what);
  }
  o->alt = (int)alt;
  if (!check_count(env, i, o->kind, "strings", want->smin, want->smax, ns)) return false;
  if ((uint64_t)ns * 5 > c->left) return truncated(env, i); /* each string is at least its length and NUL */
  if (!(o->s = calloc((size_t)ns + 1, sizeof(char *)))) return nomem(env);
  for (uint32_t j = 0; j < ns; j++) {
    uint32_t sl;
    if (!take_u32(c, &sl)) return truncated(env, i);
    if (sl > MAX_STRING) return bad_string(env, i, j);
    const uint8_t *s = take(c, (size_t)sl + 1);
    if (!s) return truncated(env, i);
    if (s[sl] != 0 || memchr(s, 0, sl)) return bad_string(env, i, j);
    o->s[j] = (char *)s;
    o->ns = (int)j + 1;
  }
  if (!check_count(env, i, o->kind, "numbers", want->nmin, want->nmax, nn)) return false;
  if ((uint64_t)nn * 8 > c->left) return truncated(env, i);
  if (!alloc_numbers(env, o, nn)) return false;
  for (uint32_t j = 0; j < nn; j++) {
    uint64_t u;
    double d;
    memcpy(&u, take(c, 8), 8); /* nn * 8 bytes are there: checked above */
    u = le64toh(u);
    memcpy(&d, &u, 8);
    if (!check_number(env, i, j, o, d)) return false;
  }
  if (nb) {
    size_t blen = nb - 1;
    const uint8_t *b = take(c, blen);
    if (!b) return truncated(env, i);
    if (!(o->b = malloc(blen ? blen : 1))) return nomem(env);
    memcpy(o->b, b, blen);
    o->blen = blen;
  }
  return check_op(env, i, o);
}

/* The plan in C memory from a Buffer, or NULL with a JavaScript error thrown. */
static struct plan *read_wire(napi_env env, const void *data, size_t size) {
  uint32_t nops;
  struct cursor c = { data, size };
  if (!take_u32(&c, &nops)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "spawn: a plan's bytes start with its number of ops");
    return NULL;
  }
  if (nops > MAX_OPS || (uint64_t)nops * 20 > c.left) { /* each op is at least its 5 u32s */
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "spawn: a plan has 1 to 65536 ops, 20 bytes each at least");
    return NULL;
  }
  struct plan *p = new_plan(env, nops);
  if (!p) return NULL;
  if (!(p->wire = malloc(c.left ? c.left : 1))) {
    free_plan(p);
    nomem(env);
    return NULL;
  }
  memcpy(p->wire, c.at, c.left);
  c.at = (const uint8_t *)p->wire;
  for (uint32_t i = 0; i < nops; i++)
    if (!read_wire_op(env, &c, i, nops, &p->ops[i]) || !plan_op_read(env, p, &p->ops[i])) {
      free_plan(p);
      return NULL;
    }
  if (c.left) {
    char what[96];
    snprintf(what, sizeof what, "spawn: %zu bytes after the plan's last op", c.left);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", what);
    free_plan(p);
    return NULL;
  }
  return p;
}

/* ops: a Buffer (src/plan/wire.ts) or an array of op objects. */
static struct plan *read_ops(napi_env env, napi_value ops) {
  bool isbuf = false;
  void *data;
  size_t size;
  if (napi_is_buffer(env, ops, &isbuf) == napi_ok && isbuf && napi_get_buffer_info(env, ops, &data, &size) == napi_ok)
    return read_wire(env, data, size);
  return read_plan(env, ops);
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

static int can_vfork(const struct plan *p, uint64_t flags, bool hold_ok) {
  if (flags >> 32) return 0;
  for (int i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_WAIT_SYNC || p->ops[i].kind == OP_INIT || (p->ops[i].kind == OP_HOLD && !hold_ok))
      return 0;
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

/* One start: the plan and pipes made on the JavaScript thread, the clone on any thread, the result read
 * back on the JavaScript thread. */
struct job {
  struct plan *p;
  struct nsbox_clone_args ca;
  int pidfd, errp[2], syncp[2];
  bool sync;
  pid_t pid;
  int err;
  napi_async_work work;
  napi_deferred deferred;
  bool own_thread; /* spawnHeld: vfork'd from a thread of its own, which may wait through a hold */
  int refs;        /* spawnHeld: that thread and JavaScript's handle */
};

static void free_job(struct job *j) {
  if (j->p) free_plan(j->p);
  free(j);
}

/* A prepared job that will not be launched: its pipes closed, then freed. */
static void abandon_job(struct job *j) {
  close(j->errp[0]);
  close(j->errp[1]);
  if (j->sync) {
    close(j->syncp[0]);
    close(j->syncp[1]);
  }
  free_job(j);
}

/* Reads a request into a job (the plan in C memory, the pipes made); NULL with a JavaScript error thrown. */
static struct job *prepare(napi_env env, napi_value req) {
  napi_valuetype t;
  napi_typeof(env, req, &t);
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: expected { flags, ops, sync?, cgroupFd? }");
    return NULL;
  }
  int64_t fl, cgfd = -1;
  if (!int_arg(env, prop(env, req, "flags"), "spawn: flags", 0, 4294967295.0, &fl)) return NULL;
  napi_value cg = prop(env, req, "cgroupFd");
  if (!is_undefined(env, cg) && !int_arg(env, cg, "spawn: cgroupFd", 0, INT_MAX_D, &cgfd)) return NULL;
  bool sync = false;
  napi_value sv = prop(env, req, "sync");
  if (!is_undefined(env, sv) && napi_get_value_bool(env, sv, &sync) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: sync must be true or false");
    return NULL;
  }
  bool parent = false;
  napi_value pv = prop(env, req, "parent");
  if (!is_undefined(env, pv) && napi_get_value_bool(env, pv, &parent) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: parent must be true or false");
    return NULL;
  }
  uint64_t flags = (uint64_t)fl;
  /* Only namespaces: CLONE_VM, CLONE_THREAD, CLONE_SETTLS... would make a child that shares or
   * corrupts this process. CLONE_NEWTIME is 0x80. */
  const uint64_t ns = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
    | CLONE_NEWNET | 0x80;
  if (flags & ~ns) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "spawn: flags may hold only CLONE_NEW* namespace flags");
    return NULL;
  }
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, "ENOMEM", "spawn: out of memory");
    return NULL;
  }
  j->pidfd = -1;
  j->syncp[0] = j->syncp[1] = -1;
  j->sync = sync;
  if (!(j->p = read_ops(env, prop(env, req, "ops")))) {
    free_job(j);
    return NULL;
  }
  if (pipe2(j->errp, O_CLOEXEC) < 0) {
    free_job(j);
    throw_errno(env, "pipe2", errno);
    return NULL;
  }
  if (sync && pipe2(j->syncp, O_CLOEXEC) < 0) {
    int e = errno;
    close(j->errp[0]);
    close(j->errp[1]);
    free_job(j);
    throw_errno(env, "pipe2", e);
    return NULL;
  }
  j->p->err_fd = j->errp[1];
  j->p->sync_fd = j->syncp[0];
  j->p->sync_peer = j->syncp[1];
  /* parent: the child is our parent's (a detached container's is nsbox-monitor's: native/monitor.c). */
  j->ca.flags = flags | CLONE_PIDFD | (parent ? CLONE_PARENT : 0);
  j->ca.pidfd = (uint64_t)(uintptr_t)&j->pidfd;
  j->ca.exit_signal = parent ? 0 : SIGCHLD; /* clone3 takes CLONE_PARENT only without one: the parent's is used */
  if (cgfd >= 0) {
    j->ca.flags |= NSBOX_CLONE_INTO_CGROUP;
    j->ca.cgroup = (uint64_t)cgfd;
  }
  return j;
}

/* The clone, on whichever thread calls it; returns once the child has exec'd or failed (the vfork
 * path) or exists (clone3, a copy of our memory). Touches nothing but the job. */
static void launch(struct job *j) {
  /* No signal handler of Node's may run in the child before it resets them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (can_vfork(j->p, j->ca.flags, j->own_thread)) {
    j->pid = spawn_vfork(j->p, j->ca.flags, &j->pidfd);
  } else {
    j->pid = syscall(SYS_clone3, &j->ca, sizeof j->ca);
    if (j->pid == 0) plan_run(j->p);
  }
  j->err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  /* The child ends of the pipes: the child has its own (exec'd, or copied with its memory). */
  close(j->errp[1]);
  if (j->sync) close(j->syncp[0]);
}

/* The result of a launched job ({ pid, pidfd, errFd, syncFd }), or NULL with *error set; frees the job. */
static napi_value finish(napi_env env, struct job *j, napi_value *error) {
  napi_value r = NULL;
  if (j->pid < 0) {
    close(j->errp[0]);
    if (j->sync) close(j->syncp[1]);
    *error = errno_error(env, "clone3", j->err);
  } else {
    napi_create_object(env, &r);
    napi_set_named_property(env, r, "pid", num(env, j->pid));
    napi_set_named_property(env, r, "pidfd", num(env, j->pidfd));
    napi_set_named_property(env, r, "errFd", num(env, j->errp[0]));
    napi_set_named_property(env, r, "syncFd", num(env, j->syncp[1]));
  }
  free_job(j);
  return r;
}

/* spawn({ flags, cgroupFd?, sync?, ops }) -> { pid, pidfd, errFd, syncFd }: the clone on this thread. */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  napi_value a[1], error;
  args(env, info, 1, a);
  struct job *j = prepare(env, a[0]);
  if (!j) return NULL;
  launch(j);
  napi_value r = finish(env, j, &error);
  if (!r) napi_throw(env, error);
  return r;
}

/* spawnAsync(req) -> Promise of what spawn returns: the clone (and, on the vfork path, the wait until the
 * child has exec'd) on a thread of libuv's pool, so the event loop goes on meanwhile. The plan stays in
 * the job until then. PR_SET_PDEATHSIG fires when the thread that cloned the child exits: libuv's pool
 * threads live as long as the process (they are joined only at its exit), so a container still dies
 * with the process that made it, and never earlier. */
static void async_execute(napi_env env, void *data) {
  (void)env;
  launch(data);
}

static void async_complete(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  napi_deferred d = j->deferred;
  napi_async_work w = j->work;
  napi_value error, r = finish(env, j, &error);
  if (r) napi_resolve_deferred(env, d, r);
  else napi_reject_deferred(env, d, error);
  napi_delete_async_work(env, w);
  (void)status; /* napi_cancelled only by napi_cancel_async_work, which nothing calls */
}

static napi_value SpawnAsync(napi_env env, napi_callback_info info) {
  napi_value a[1], promise, name;
  args(env, info, 1, a);
  struct job *j = prepare(env, a[0]);
  if (!j) return NULL;
  napi_create_string_utf8(env, "nsbox.spawn", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok
      || napi_create_async_work(env, NULL, name, async_execute, async_complete, j, &j->work) != napi_ok
      || napi_queue_async_work(env, j->work) != napi_ok) {
    abandon_job(j);
    napi_throw_error(env, NULL, "spawn: cannot queue the start");
    return NULL;
  }
  return promise;
}

/* spawnHeld(req) -> { errFd, handle }: for a plan held before exec (a sandbox pool's). A fork-like clone3
 * would copy Node's page tables while holding its memory map's lock (every allocation of the JavaScript
 * thread waits meanwhile) and leave each held child a copy-on-write image of Node. So the child is vfork'd
 * (CLONE_VM, nothing copied) from a thread of its own, which sleeps until the child has exec'd or died, plan
 * and stack kept alive until then, and then stays until the child has ended: PR_SET_PDEATHSIG fires when the
 * thread that cloned the child exits, so it must outlive the child (it waits with WNOWAIT: JavaScript reaps).
 * The pid is not known on this thread until exec: heldChild(handle) reads it from the pidfd, which the kernel
 * wrote before the child ran, once the error pipe is readable (a report, or EOF). A plan with a wait for the
 * parent, init or a clone3-only flag is cloned as spawn() does, on that thread. */
static void job_unref(struct job *j) {
  if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0) free_job(j);
}

static void *held_thread(void *arg) {
  struct job *j = arg;
  launch(j);
  pid_t pid = j->pid;
  free_plan(j->p); /* exec'd or dead: the child no longer reads it */
  j->p = NULL;
  job_unref(j);
  if (pid > 0) {
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
  }
  return NULL;
}

static void job_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  job_unref(data);
}

static napi_value SpawnHeld(napi_env env, napi_callback_info info) {
  napi_value a[1], r, handle;
  args(env, info, 1, a);
  struct job *j = prepare(env, a[0]);
  if (!j) return NULL;
  j->own_thread = true;
  j->refs = 2;
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  /* The thread starts with every signal blocked: Node's handlers run on its own threads only. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&t, &attr, held_thread, j);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    abandon_job(j);
    return throw_errno(env, "pthread_create", rc);
  }
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "errFd", num(env, j->errp[0]));
  napi_set_named_property(env, r, "syncFd", num(env, j->syncp[1]));
  napi_create_external(env, j, job_finalize, NULL, &handle);
  napi_set_named_property(env, r, "handle", handle);
  return r;
}

/* heldChild(handle) -> { pid, pidfd }: once spawnHeld's error pipe is readable; throws the clone's error. */
static napi_value HeldChild(napi_env env, napi_callback_info info) {
  napi_value a[1], r;
  args(env, info, 1, a);
  struct job *j;
  if (napi_get_value_external(env, a[0], (void **)&j) != napi_ok || !j || !j->own_thread) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "heldChild: expected the handle from spawnHeld");
    return NULL;
  }
  int pidfd = __atomic_load_n(&j->pidfd, __ATOMIC_ACQUIRE);
  if (pidfd < 0) {
    /* No child: the clone failed (the thread closed its end of the pipe after noting why). */
    int pid = __atomic_load_n(&j->pid, __ATOMIC_ACQUIRE);
    return throw_errno(env, "clone", pid < 0 ? j->err : EAGAIN);
  }
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  long pid = -1;
  if (n > 0) {
    buf[n] = 0;
    char *at = strstr(buf, "\nPid:");
    if (at) pid = strtol(at + 5, NULL, 10);
  }
  napi_create_object(env, &r);
  napi_set_named_property(env, r, "pid", num(env, (double)pid));
  napi_set_named_property(env, r, "pidfd", num(env, pidfd));
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
  int64_t fd;
  INT_ARG(a[0], "watchReadable: fd", 0, INT_MAX_D, fd);
  napi_valuetype t;
  napi_typeof(env, a[1], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "watchReadable: the callback must be a function");
    return NULL;
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  struct watch *w = calloc(1, sizeof *w);
  w->env = env;
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, (int)fd);
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
  int64_t pidfd;
  INT_ARG(a[0], "waitPidfd: pidfd", 0, INT_MAX_D, pidfd);
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
  int64_t pid;
  INT_ARG(a[0], "pidfdOpen: pid", 1, 4194304, pid);
  int fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  return num(env, fd);
}

static napi_value PidfdSendSignal(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  int64_t fd, sig;
  INT_ARG(a[0], "pidfdSendSignal: pidfd", 0, INT_MAX_D, fd);
  INT_ARG(a[1], "pidfdSendSignal: signal", 0, 64, sig);
  if (syscall(SYS_pidfd_send_signal, (int)fd, (int)sig, NULL, 0) < 0)
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
  int64_t fl;
  INT_ARG(a[0], "unshare: flags", 0, 4294967295.0, fl);
  if (unshare((int)fl) < 0) return throw_errno(env, "unshare", errno);
  return NULL;
}

static napi_value Setns(napi_env env, napi_callback_info info) {
  napi_value a[2];
  args(env, info, 2, a);
  int64_t fd, type = 0;
  INT_ARG(a[0], "setns: fd", 0, INT_MAX_D, fd);
  if (!is_undefined(env, a[1])) INT_ARG(a[1], "setns: nstype", 0, 4294967295.0, type);
  if (setns((int)fd, (int)type) < 0)
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
  if ((!src && !is_undefined(env, a[0])) || !dst || (!fs && !is_undefined(env, a[2]))
      || (!data && !is_undefined(env, a[4]))) {
    free(src);
    free(dst);
    free(fs);
    free(data);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                          "mount: source, target, fstype and data must be strings without NUL bytes");
    return NULL;
  }
  int64_t fl = 0;
  if (!is_undefined(env, a[3]) && !int_arg(env, a[3], "mount: flags", 0, SAFE_D, &fl)) {
    free(src);
    free(dst);
    free(fs);
    free(data);
    return NULL;
  }
  unsigned long flags = (unsigned long)fl;
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
  int64_t fl = 0;
  if (!is_undefined(env, a[1])) INT_ARG(a[1], "umount: flags", 0, INT_MAX_D, fl);
  char *t = get_string(env, a[0]);
  int rc = t ? syscall(SYS_umount2, t, (int)fl) : (errno = EINVAL, -1);
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

/* getrlimit(resource) -> [soft, hard], -1 for unlimited: one syscall (/proc/self/limits is a page of text). */
static napi_value Getrlimit(napi_env env, napi_callback_info info) {
  napi_value a[1], r;
  args(env, info, 1, a);
  int64_t res;
  INT_ARG(a[0], "getrlimit: resource", 0, 63, res);
  struct rlimit rl;
  if (getrlimit((int)res, &rl) < 0) return throw_errno(env, "getrlimit", errno);
  napi_create_array_with_length(env, 2, &r);
  napi_set_element(env, r, 0, num(env, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur));
  napi_set_element(env, r, 1, num(env, rl.rlim_max == RLIM_INFINITY ? -1 : (double)rl.rlim_max));
  return r;
}

/* flock(fd, op): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8. Returns false when LOCK_NB finds it held. */
static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value a[2], r;
  args(env, info, 2, a);
  int64_t fd, op;
  INT_ARG(a[0], "flock: fd", 0, INT_MAX_D, fd);
  INT_ARG(a[1], "flock: operation", 0, 15, op);
  int rc;
  do rc = flock((int)fd, (int)op); while (rc < 0 && errno == EINTR);
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
  int64_t fd, rows, cols;
  INT_ARG(a[0], "setWinsize: fd", 0, INT_MAX_D, fd);
  INT_ARG(a[1], "setWinsize: rows", 0, 65535, rows);
  INT_ARG(a[2], "setWinsize: cols", 0, 65535, cols);
  struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
  if (ioctl((int)fd, TIOCSWINSZ, &ws) < 0) return throw_errno(env, "ioctl TIOCSWINSZ", errno);
  return NULL;
}

#define FN(name, f) { name, NULL, f, NULL, NULL, NULL, napi_default, NULL }

void bpf_register(napi_env env, napi_value exports);
void pty_register(napi_env env, napi_value exports);
void fsops_register(napi_env env, napi_value exports);
void hold_register(napi_env env, napi_value exports);
void idmap_register(napi_env env, napi_value exports);
void net_register(napi_env env, napi_value exports);

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    FN("spawn", Spawn),
    FN("spawnAsync", SpawnAsync),
    FN("spawnHeld", SpawnHeld),
    FN("heldChild", HeldChild),
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
    FN("getrlimit", Getrlimit),
    FN("openpty", Openpty),
    FN("setWinsize", SetWinsize),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  bpf_register(env, exports); /* native/bpf.c */
  pty_register(env, exports); /* native/pty.c */
  fsops_register(env, exports); /* native/fsops.c */
  hold_register(env, exports); /* native/hold.c */
  idmap_register(env, exports); /* native/idmap.c */
  net_register(env, exports); /* native/net.c */
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
