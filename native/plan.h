/* A container set-up plan: a flat list of operations the child runs with raw syscalls.
 * The op codes must match src/plan/ops.ts. */
#ifndef NSBOX_PLAN_H
#define NSBOX_PLAN_H

#include <stdint.h>
#include <stddef.h>

enum op_kind {
  OP_MOUNT = 0,        /* s: src, target, fstype, data   n: flags */
  OP_MKDIR = 1,        /* s: path                        n: mode (EEXIST is fine) */
  OP_PIVOT_ROOT = 2,   /* s: new root */
  OP_UMOUNT = 3,       /* s: path                        n: flags */
  OP_SETHOSTNAME = 4,  /* s: name */
  OP_LOOPBACK_UP = 5,
  OP_DUP2 = 6,         /* n: from, to */
  OP_CHDIR = 7,        /* s: path */
  OP_SETRLIMIT = 8,    /* n: resource, soft, hard (-1 = infinity) */
  OP_EXEC = 9,         /* n: argc, envc                  s: argv..., envp..., candidate paths... */
  OP_SYMLINK = 10,     /* s: target, linkpath (EEXIST is fine) */
  OP_CREATE_FILE = 11, /* s: path                        n: mode */
  OP_SETATTR = 12,     /* s: path                        n: attr_set, attr_clr, recursive */
  OP_WAIT_SYNC = 13,   /* wait for the parent's go-ahead on the sync pipe */
  OP_SETSID = 14,
  OP_SETNS = 15,       /* n: fd, nstype */
  OP_UNSHARE = 16,     /* n: flags */
  OP_PRCTL = 17,       /* n: option, arg2, arg3, arg4, arg5 */
  OP_SETGROUPS = 18,   /* n: gids... */
  OP_SETRESGID = 19,   /* n: gid */
  OP_SETRESUID = 20,   /* n: uid */
  OP_CAPS = 21,        /* n: bounding, effective, permitted, inheritable, ambient (each lo, hi) */
  OP_SECCOMP = 22,     /* b: struct sock_filter[] */
  OP_CLOSE_FDS = 23,   /* n: first fd: mark it and all above close-on-exec */
  OP_OPEN_TREE = 24,   /* s: path                        n: slot, recursive */
  OP_MOVE_MOUNT = 25,  /* s: target                      n: slot */
  OP_INIT = 26,        /* fork; the parent stays as a reaper that forwards signals */
  OP_UMASK = 27,       /* n: mask */
  OP_WRITE_FILE = 28,  /* s: path, data */
  OP_SET_TTY = 29,     /* n: fd: make it the controlling terminal */
  OP_CLOSE = 30,       /* n: fds...: close each now; n = [-1, keep...]: close all above 2 but keep and the plan's
                          pipes */
  /* Mounts inside the root, resolved without leaving it (native/paths.c). Slots hold fds. */
  OP_OPEN_AT = 31,       /* s: path   n: slot, how (OPEN_AT_*): an O_PATH fd, RESOLVE_IN_ROOT|NO_MAGICLINKS */
  OP_MOVE_MOUNT_TO = 32, /* n: mount slot, target slot: attach one onto the other, close both */
  OP_FSMOUNT = 33,       /* s: fstype, options ("k=v" or "flag")...   n: slot, MOUNT_ATTR_* */
  OP_CLONE_TREE = 34,    /* n: from slot, to slot, recursive: open_tree(CLONE) of an O_PATH fd */
  OP_SETATTR_SLOT = 35,  /* n: slot, attr_set, attr_clr, recursive[, propagation] */
  OP_USERNS_ROOT = 36,   /* n: drop groups, gid 0, uid 0 (each 0/1): become root of a new user namespace */
  /* Paths relative to a mount held in a slot, never by a path from the root (native/paths.c). */
  OP_CHDIR_IN_ROOT = 37, /* s: path   n: make: open it in the root (no magic links), fchdir, check getcwd */
  OP_OPEN_BENEATH = 38,  /* s: path   n: dir slot, to slot, how (OPEN_AT_DIR|FILE|OPTIONAL): no symlinks */
  OP_ATTACH = 39,        /* n: mount slot, target slot: move_mount; the target is closed, the mount kept */
  OP_MKNOD_AT = 40,      /* s: name   n: dir slot, mode (with S_IF*), major, minor, uid, gid (-1: as made) */
  OP_SYMLINK_AT = 41,    /* s: target, name   n: dir slot */
  OP_MASK_AT = 42,       /* s: path   n: tree slot, dev slot: mask with a read-only empty tmpfs or dev/null */
  OP_CLOSE_SLOTS = 43,   /* n: slots...: close what they hold (no fd of a mount in reach of exec's path lookup) */
  /* Held before exec until started (native/hold.c). */
  OP_HOLD_OPEN = 44,     /* s: FIFO path   n: slot: open it read-write (before pivot_root) */
  OP_HOLD = 45,          /* n: slot[, cap]: report "held" on the error pipe, close it, wait for a byte on the FIFO;
                            with cap > 0, keep the error pipe and read a command message (below) of at most cap bytes */
  /* A command given at release to a container held with a command buffer (a sandbox pool). */
  OP_HELD_CHDIR = 46,    /* chdir in the root to the message's cwd (as OP_CHDIR_IN_ROOT; nothing when it is empty) */
  OP_HELD_EXEC = 47,     /* execve the message's command: its argv, env and candidate paths, as OP_EXEC */
  /* An OCI runtime's --preserve-fds. */
  OP_KEEP_ON_EXEC = 50,  /* n: fds...: clear close-on-exec on each (after OP_CLOSE_FDS marked them all) */
  OP_PERSONALITY = 51,   /* n: persona: personality(2) (linux.personality's LINUX32), kept across exec */
  /* Images (54-55). */
  OP_TAKE_FD = 54,       /* n: fd, slot: an inherited fd kept open (an idmapped mount) becomes the slot's */
};

/* The command message (little-endian): u32 length of the rest, then u32 argc, envc, ncand, then NUL-terminated
 * strings: cwd, argv..., env..., candidate paths.... Read into the plan's buffer, allocated before clone. */
#define HOLD_MAX_COMMAND (4 << 20)

#define PLAN_SLOTS 1024

/* OP_OPEN_AT how: create missing directories (and an empty file last); ENOENT leaves the slot empty
 * (-1) and the ops that use it do nothing. */
#define OPEN_AT_DIR 1
#define OPEN_AT_FILE 2
#define OPEN_AT_OPTIONAL 4
#define OPEN_AT_NOSYMLINKS 8 /* refuse any symlink on the way (for paths already resolved by realpath) */
#define OPEN_AT_NOT_KERNFS 16 /* EXDEV when it lands on procfs or sysfs (a mount point must not) */
#define OPEN_AT_XDEV 32       /* OP_OPEN_BENEATH: may cross mounts (e.g. a bound host /sys) */

struct op {
  int kind;
  int ns;           /* number of strings */
  int nn;           /* number of numbers */
  char **s;
  int64_t *n;
  void *b;          /* raw bytes (seccomp program) */
  int alt;          /* the next `alt` ops are this one's fallback: run if it fails, skipped if it works */
  size_t blen;
  char **argv;      /* OP_EXEC: built before clone */
  char **envp;
};

struct plan {
  int nops;
  struct op *ops;
  int sync_fd;      /* read end, child side */
  int sync_peer;    /* the parent's write end: the child closes its copy first, so the parent's death reads as EOF */
  int err_fd;       /* write end, close-on-exec */
  int slots[PLAN_SLOTS];
  /* OP_HOLD with a command buffer: the message, and pointers into it (argv, NULL, envp, NULL, candidates). */
  char *cmd;
  size_t cmd_cap;
  char **cmd_ptrs;
  size_t cmd_nptrs;
  int cmd_argc, cmd_envc, cmd_ncand;
  void *wire;       /* a plan read from a Buffer: the copy its ops' strings point into */
};

/* native/paths.c */
int op_open_at(struct plan *p, struct op *o);
int op_move_mount_to(struct plan *p, struct op *o);
int op_fsmount(struct plan *p, struct op *o);
int op_clone_tree(struct plan *p, struct op *o);
int op_setattr_slot(struct plan *p, struct op *o);
int op_chdir_in_root(struct plan *p, struct op *o);
int op_open_beneath(struct plan *p, struct op *o);
int op_attach(struct plan *p, struct op *o);
int op_mknod_at(struct plan *p, struct op *o);
int op_symlink_at(struct plan *p, struct op *o);
int op_mask_at(struct plan *p, struct op *o);
int op_close_slots(struct plan *p, struct op *o);
int check_path_op(struct op *o);

/* native/hold.c */
int op_hold_open(struct plan *p, struct op *o);
int op_hold(struct plan *p, struct op *o, int step);
int op_held_chdir(struct plan *p);
int op_held_exec(struct plan *p);

/* Runs in the child after clone(): raw syscalls only. Never returns. */
void plan_run(struct plan *p) __attribute__((noreturn));

#endif
