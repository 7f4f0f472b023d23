/* nsbox-monitor: what stays on the host while a detached container runs (conmon's shape, our own code).
 *
 *   nsbox-monitor -n NODE -c CLI [-t] [-s LIMIT] -- RUN-ARGS...
 *   fds on entry: 3 the CLI's report pipe (handed to the set-up step), 4 the state root, open and checked.
 *
 * It makes the container's output pipes (or a pty with -t), then runs the set-up step
 * `NODE -- CLI nsbox-setup RUN-ARGS` as its child with them on fds 5 and 6 and a pipe on fd 4. That step
 * creates the container with CLONE_PARENT, so the container is this process's child: its parent-death
 * signal fires when this process dies, and nobody else can reap it (its pid cannot be reused under us).
 * The step reports "PID ID" on fd 4 and exits. From then on this process only sleeps in poll(): it copies
 * stdout and stderr into ID/log as CRI records ("TIME stdout F text"), rotating log to log.1 at LIMIT;
 * when PID 1 ends it writes ID/exit (the raw wait status, the end time, usage) and runs
 * `NODE -- CLI nsbox-cleanup ID`, where TypeScript records the end and cleans up; then it exits.
 * Policy stays in TypeScript: this file only moves bytes and records what the kernel said. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define REPORT_FD 3
#define ROOT_FD 4
#define BUF_MAX 16384

static const char *node_path, *cli_path;
static long limit = 1 << 20;
static size_t read_size = BUF_MAX;
static int dir_fd = -1, log_fd = -1;
static off_t log_size;
static char id[13];
static char buf[BUF_MAX];

struct stream {
  int fd;
  const char *name;
};
static struct stream streams[2] = { { -1, "stdout" }, { -1, "stderr" } };

static void say(const char *fmt, ...) {
  char m[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(m, sizeof m - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof m - 2) n = sizeof m - 2;
  m[n++] = '\n';
  if (write(2, m, n) < 0) { /* nowhere else to say it */ }
}

static int pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* RFC 3339 with nanoseconds, UTC: 30 characters (the buffer is larger only to quiet -Wformat). */
static void timestamp(char out[48]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* A file of the container's directory, never through a symlink. */
static int open_in_dir(const char *name, int flags) {
  return openat(dir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
}

static void open_log(int trunc) {
  log_fd = open_in_dir("log", O_WRONLY | O_APPEND | O_CREAT | (trunc ? O_TRUNC : 0));
  struct stat st;
  log_size = log_fd >= 0 && fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* One record, in one write (O_APPEND): a reader sees whole records. The log holds at most `limit`
 * bytes; the previous one is kept as log.1. */
static void record(const char *stream, const char *data, size_t len, int partial) {
  if (dir_fd < 0) return;
  char head[80];
  timestamp(head);
  int h = (int)strlen(head);
  h += snprintf(head + h, sizeof head - h, " %s %c ", stream, partial ? 'P' : 'F');
  size_t total = h + len + 1;
  if (log_fd >= 0 && log_size > 0 && log_size + (off_t)total > limit) {
    close(log_fd);
    log_fd = -1;
    if (renameat(dir_fd, "log", dir_fd, "log.1") < 0 && errno != ENOENT) say("nsbox-monitor: rotate: %m");
    open_log(1);
  }
  if (log_fd < 0) return; /* the directory is gone (removed meanwhile): the output goes nowhere */
  struct iovec iov[3] = { { head, h }, { (void *)data, len }, { "\n", 1 } };
  ssize_t n = writev(log_fd, iov, 3);
  if (n > 0) log_size += n;
}

/* A chunk read from a stream: each full line is an F record, a last piece without newline a P one. */
static void chunk(const char *stream, const char *p, size_t n) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    if (!nl) {
      record(stream, p, n, 1);
      return;
    }
    record(stream, p, nl - p, 0);
    n -= nl - p + 1;
    p = nl + 1;
  }
}

/* Read what the stream has; returns 0 once it has ended (every writer closed it; EIO for a pty). */
static int pump(struct stream *s) {
  for (;;) {
    ssize_t n = read(s->fd, buf, read_size);
    if (n > 0) {
      chunk(s->name, buf, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    close(s->fd);
    s->fd = -1;
    return 0;
  }
}

static void drain(void) {
  for (int i = 0; i < 2; i++)
    if (streams[i].fd >= 0) pump(&streams[i]);
}

/* ID/exit, atomically: the raw wait status, when, and PID 1's usage (JSON, read by src/state/finish.ts). */
static void write_exit(int status, const struct rusage *ru) {
  char ts[48], text[256];
  timestamp(ts);
  int n = snprintf(text, sizeof text,
                   "{\"status\":%d,\"finishedAt\":\"%s\",\"userUs\":%lld,\"systemUs\":%lld,\"maxRssKb\":%ld}\n",
                   status, ts, (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec,
                   (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec, ru->ru_maxrss);
  unlinkat(dir_fd, "exit.tmp", 0);
  int fd = open_in_dir("exit.tmp", O_WRONLY | O_CREAT | O_EXCL);
  if (fd < 0 || write(fd, text, n) != n || close(fd) < 0 || renameat(dir_fd, "exit.tmp", dir_fd, "exit") < 0) {
    say("nsbox-monitor: cannot record the exit status of %s: %m", id);
    if (fd >= 0) unlinkat(dir_fd, "exit.tmp", 0);
  }
}

/* Our own, and writable by nobody else: the state decides which pids nsbox signals. */
static int checked_dir(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022);
}

static pid_t start(char *const argv[], int *pidfd) {
  pid_t pid = fork();
  if (pid == 0) {
    execv(node_path, argv);
    say("nsbox-monitor: cannot run %s: %m", node_path);
    _exit(127);
  }
  if (pid > 0) *pidfd = pidfd_open(pid);
  return pid;
}

/* Output ends for the container: two pipes, or one pty (stdout only). [0] ours, [1] the container's. */
static int make_output(int tty, int out[2], int err[2]) {
  if (!tty) return pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ? -1 : 0;
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char path[64];
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, path, sizeof path) != 0) return -1;
  int s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) return -1;
  struct winsize ws = { .ws_row = 24, .ws_col = 80 };
  ioctl(m, TIOCSWINSZ, &ws);
  out[0] = m;
  out[1] = s;
  err[0] = err[1] = -1;
  return 0;
}

/* Runs the set-up step and waits for it; returns the container's pid (our child) with its pidfd, or -1. */
static pid_t setup(int argc, char **argv, int tty, int *pidfd) {
  int out[2], err[2], rep[2];
  if (make_output(tty, out, err) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
    say("nsbox-monitor: cannot make the output pipes: %m");
    return -1;
  }
  char **args = calloc(argc + 5, sizeof *args);
  if (!args) return -1;
  int k = 0;
  args[k++] = (char *)node_path;
  args[k++] = "--";
  args[k++] = (char *)cli_path;
  args[k++] = "nsbox-setup";
  for (int i = 0; i < argc; i++) args[k++] = argv[i];
  char me[32];
  snprintf(me, sizeof me, "%d", (int)getpid());
  setenv("NSBOX_MONITOR_PID", me, 1);
  pid_t pid = fork();
  if (pid == 0) {
    /* fds 3 (report), 4 (to us), 5 (stdout or the pty), 6 (stderr): above them first, then in place. */
    int r = fcntl(rep[1], F_DUPFD, 10), o = fcntl(out[1], F_DUPFD, 10);
    int e = err[1] < 0 ? -1 : fcntl(err[1], F_DUPFD, 10);
    if (r < 0 || o < 0 || dup2(r, 4) < 0 || dup2(o, 5) < 0 || (e >= 0 && dup2(e, 6) < 0)) _exit(125);
    close(r);
    close(o);
    if (e >= 0) close(e);
    execv(node_path, args);
    say("nsbox-monitor: cannot run %s: %m", node_path);
    _exit(127);
  }
  free(args);
  close(REPORT_FD); /* the CLI sees EOF once the step has reported, or died */
  close(rep[1]);
  close(out[1]);
  if (err[1] >= 0) close(err[1]);
  streams[0].fd = out[0];
  streams[1].fd = err[0];
  if (pid < 0) {
    say("nsbox-monitor: fork: %m");
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  char msg[64];
  ssize_t n = read(rep[0], msg, sizeof msg - 1);
  close(rep[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n <= 0) return -1; /* it said why on fd 3 */
  msg[n] = 0;
  int cpid = 0;
  if (sscanf(msg, "%d %12s", &cpid, id) != 2 || cpid <= 0 || strlen(id) != 12 || strspn(id, "0123456789abcdef") != 12) {
    say("nsbox-monitor: a bad report from the set-up step");
    return -1;
  }
  /* Ours (CLONE_PARENT): a pidfd of it cannot name a reused pid, and waitid on it works. */
  *pidfd = pidfd_open(cpid);
  siginfo_t si = { 0 };
  if (*pidfd < 0 || syscall(SYS_waitid, P_PIDFD, *pidfd, &si, WEXITED | WNOHANG | WNOWAIT, NULL) < 0) {
    say("nsbox-monitor: the container %d is not our child: %m", cpid);
    return -1;
  }
  int d = openat(ROOT_FD, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0 || !checked_dir(d)) {
    say("nsbox-monitor: cannot use the state directory of %s", id);
    if (d >= 0) close(d);
  } else {
    dir_fd = d;
  }
  return cpid;
}

/* At most a few clean-up steps (a Node process each, ~50 MB for a moment) at once per state root: 1,000
 * containers ending together (rm -f of all, a host-wide kill) would otherwise start 1,000 of them. A slot is a
 * record lock on one byte of ROOT/.cleanup, held by this process until it exits (a killed monitor frees it). */
static void take_cleanup_slot(void) {
  int fd = openat(ROOT_FD, ".cleanup", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return; /* no slot to be had: run it anyway */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int slots = cpus > 2 ? (int)cpus * 2 : 4;
  struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
  for (l.l_start = 0; l.l_start < slots; l.l_start++)
    if (fcntl(fd, F_SETLK, &l) == 0) return;
  l.l_start = getpid() % slots;
  while (fcntl(fd, F_SETLKW, &l) < 0 && errno == EINTR) {}
}

static long parse_size(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *end || v < 1024 ? -1 : v;
}

int main(int argc, char **argv) {
  int tty = 0, c;
  while ((c = getopt(argc, argv, "+n:c:ts:")) != -1) {
    switch (c) {
    case 'n': node_path = optarg; break;
    case 'c': cli_path = optarg; break;
    case 't': tty = 1; break;
    case 's':
      if ((limit = parse_size(optarg)) < 0) return say("nsbox-monitor: bad size %s", optarg), 2;
      break;
    default: return 2;
    }
  }
  if (!node_path || !cli_path) return say("usage: nsbox-monitor -n NODE -c CLI [-t] [-s LIMIT] -- RUN-ARGS"), 2;
  if (fcntl(REPORT_FD, F_GETFD) < 0 || !checked_dir(ROOT_FD)) return say("nsbox-monitor: fds 3 and 4 expected"), 2;
  fcntl(ROOT_FD, F_SETFD, FD_CLOEXEC); /* kept for the clean-up slot; no step inherits it */
  /* A record is at most a read: it fits the log whatever the limit. */
  read_size = limit / 4 < BUF_MAX ? (size_t)limit / 4 : BUF_MAX;
  signal(SIGPIPE, SIG_IGN);

  int pidfd = -1;
  pid_t pid = setup(argc - optind, argv + optind, tty, &pidfd);
  if (pid < 0) {
    /* Nothing to watch: the set-up step undid what it made, and waited for a container that failed to end.
     * Reap it (our child): left to the host's init, a zombie could linger in its PID namespace. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    return 1;
  }
  if (chdir("/") < 0) { /* pin no mount */ }
  if (dir_fd >= 0) open_log(0);
  for (int i = 0; i < 2; i++)
    if (streams[i].fd >= 0) fcntl(streams[i].fd, F_SETFL, O_NONBLOCK);

  /* Until PID 1 ends, then until the clean-up step ends: copy output as it comes. */
  int waiting = pidfd, exited = 0, cleanup = -1;
  for (;;) {
    struct pollfd p[3] = { { waiting, POLLIN, 0 }, { streams[0].fd, POLLIN, 0 }, { streams[1].fd, POLLIN, 0 } };
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      say("nsbox-monitor: poll: %m");
      break;
    }
    for (int i = 0; i < 2; i++)
      if (streams[i].fd >= 0 && p[1 + i].revents) pump(&streams[i]);
    if (!p[0].revents) continue;
    if (!exited) {
      /* Readable: PID 1 has ended. Blocking (a tracer may hold the zombie a moment): no spinning in poll. */
      int status = 0;
      struct rusage ru;
      pid_t got;
      while ((got = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR) {}
      exited = 1;
      close(pidfd);
      drain(); /* what PID 1 and its namespace wrote is in the pipes now */
      if (got == pid && dir_fd >= 0) write_exit(status, &ru); /* else the clean-up step says it is unknown */
      take_cleanup_slot();
      char *args[] = { (char *)node_path, "--", (char *)cli_path, "nsbox-cleanup", id, NULL };
      if (start(args, &cleanup) < 0 || cleanup < 0) break;
      waiting = cleanup;
      continue;
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    break;
  }
  drain(); /* processes the clean-up step killed (outside a PID namespace of its own) wrote this last */
  if (log_fd >= 0) close(log_fd);
  return 0;
}
