// The kernel's floor for a sandbox on this machine: how many clone()s into new mount, PID, network, UTS, IPC
// and cgroup namespaces, each exec'ing /bin/true (and, with a cgroup, in a fresh v1 memory cgroup), the
// kernel does per second at concurrency C, with no mounts, plan or JavaScript at all. Run as root:
//   cc -O2 -o /tmp/nsbox-floor bench/floor.c && /tmp/nsbox-floor N C NAMESPACES [CGROUP]
// NAMESPACES: letters m (mount), p (PID), n (network), u (UTS, IPC, cgroup), x (exec /bin/true, else _exit);
// CGROUP 1: a memory cgroup made under /sys/fs/cgroup/memory per sandbox, joined by the child, removed after.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) return fprintf(stderr, "usage: %s N C NAMESPACES [CGROUP]\n", argv[0]), 2;
  int n = atoi(argv[1]), c = atoi(argv[2]), flags = 0, cg = argc > 4 && atoi(argv[4]);
  const char *what = argv[3];
  if (strchr(what, 'm')) flags |= CLONE_NEWNS;
  if (strchr(what, 'p')) flags |= CLONE_NEWPID;
  if (strchr(what, 'n')) flags |= CLONE_NEWNET;
  if (strchr(what, 'u')) flags |= CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
  int ex = strchr(what, 'x') != NULL;
  double t0 = now();
  for (int w = 0; w < c; w++) {
    if (fork() != 0) continue;
    char dir[128], procs[160];
    for (int i = 0; i < n / c; i++) {
      snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory/nsbox-floor-%d-%d", w, i);
      snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
      if (cg && mkdir(dir, 0755) < 0) return perror(dir), 1;
      pid_t pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
      if (pid == 0) {
        int fd = cg ? open(procs, O_WRONLY) : -1;
        if (cg && (fd < 0 || write(fd, "0", 1) != 1)) _exit(1);
        if (ex) execl("/bin/true", "true", (char *)0);
        _exit(ex ? 127 : 0);
      }
      int st;
      if (pid < 0 || waitpid(pid, &st, 0) < 0 || st != 0) return fprintf(stderr, "clone or child failed\n"), 1;
      if (cg) rmdir(dir);
    }
    _exit(0);
  }
  int st, bad = 0;
  while (wait(&st) > 0) bad |= st != 0;
  printf("%s concurrency %d cgroup %d: %.0f/s\n", what, c, cg, n / (now() - t0));
  return bad;
}
