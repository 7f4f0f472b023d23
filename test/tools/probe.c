/* A static multi-tool the tests run inside containers to make exact system calls.
 *   probe sc NR [ARG...]      raw syscall; prints "ok RET" or "err ENAME"
 *   probe sc32 NR [ARG...]    the same through the i386 ABI (int 0x80, x86_64 only)
 *   probe x32 NR              the same with the x32 bit set (x86_64 only)
 *   probe clone FLAGS         raw clone(FLAGS | SIGCHLD); the child exits at once
 *   probe tiocsti TEXT        push TEXT into the terminal on fd 0, a byte at a time
 *   probe ptrace PID          PTRACE_ATTACH
 *   probe openw PATH          open(PATH, O_WRONLY) and write one byte
 *   probe read PATH N         read N bytes of PATH, print them as hex
 *   probe mknod PATH b|c MAJ MIN
 *   probe swap A B SECONDS    exchange A and B (renameat2 RENAME_EXCHANGE) as fast as it can
 *   probe ids                 real and effective uid, then whether setresuid(0, 0, 0) works
 *   probe alloc MIB           allocate and touch MIB mebibytes, then print "ok"
 *   probe chrootesc PATH      the double-chroot escape (chroot into a subdirectory, climb out with
 *                             .., chroot .) then read PATH
 *   probe exehunt SECONDS     watch /proc for processes whose /proc/PID/exe opens to a file that is
 *                             not in our root (the CVE-2019-5736 way to the host's binary)
 * Arguments are numbers in C syntax (0x.. for hex), up to 64 bits. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int report(long r) {
  if (r < 0) printf("err %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  else printf("ok %ld\n", r);
  return 0;
}

static unsigned long num(const char *s) { return strtoull(s, NULL, 0); }

/* Opens /proc/PID/exe of every other process, again and again; a file that opens but is not the
 * file its path names inside our root is a binary from outside (a hit). */
static int exehunt(int seconds) {
  long hits = 0, denied = 0, opened = 0;
  pid_t self = getpid();
  time_t end = time(NULL) + seconds;
  while (time(NULL) < end) {
    DIR *d = opendir("/proc");
    if (!d) return report(-1);
    struct dirent *e;
    while ((e = readdir(d))) {
      pid_t pid = (pid_t)atoi(e->d_name);
      if (pid <= 0 || pid == self) continue;
      char path[64], target[4096];
      snprintf(path, sizeof path, "/proc/%d/exe", pid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == EACCES || errno == EPERM) denied++;
        continue;
      }
      opened++;
      struct stat a, b;
      char self[64]; /* the file we hold, named by our own fd: no race with the process exiting */
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      ssize_t n = readlink(self, target, sizeof target - 1);
      target[n > 0 ? n : 0] = 0;
      if (fstat(fd, &a) == 0 && (n <= 0 || stat(target, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)) {
        int w = open(self, O_WRONLY | O_CLOEXEC);
        printf("hit pid %d exe %s write %s\n", pid, target, w >= 0 ? "ok" : strerrorname_np(errno));
        if (w >= 0) close(w);
        hits++;
      }
      close(fd);
    }
    closedir(d);
  }
  printf("hits %ld denied %ld opened %ld\n", hits, denied, opened);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *cmd = argv[1];
  unsigned long a[6] = { 0 };
  for (int i = 3; i < argc && i < 9; i++) a[i - 3] = num(argv[i]);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(cmd, "sc") && argc >= 3) return report(syscall(num(argv[2]), a[0], a[1], a[2], a[3], a[4], a[5]));
#ifdef __x86_64__
  if (!strcmp(cmd, "x32") && argc >= 3) return report(syscall(num(argv[2]) | 0x40000000UL, a[0], a[1], a[2]));
  if (!strcmp(cmd, "sc32") && argc >= 3) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(num(argv[2])), "b"(a[0]), "c"(a[1]), "d"(a[2]) : "memory");
    if (r < 0 && r > -4096) {
      errno = (int)-r;
      r = -1;
    }
    return report(r);
  }
#endif
  if (!strcmp(cmd, "clone") && argc >= 3) {
    long pid = syscall(SYS_clone, num(argv[2]) | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return report(pid < 0 ? -1 : 0);
  }
  if (!strcmp(cmd, "tiocsti") && argc >= 3) {
    long r = 0;
    for (const char *c = argv[2]; *c && r == 0; c++) r = ioctl(0, TIOCSTI, c);
    return report(r);
  }
  if (!strcmp(cmd, "ptrace") && argc >= 3) return report(ptrace(PTRACE_ATTACH, (pid_t)num(argv[2]), 0, 0));
  if (!strcmp(cmd, "openw") && argc >= 3) {
    int fd = open(argv[2], O_WRONLY);
    if (fd < 0) return report(-1);
    return report(write(fd, "1", 1));
  }
  if (!strcmp(cmd, "read") && argc >= 4) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return report(-1);
    unsigned char buf[64];
    size_t want = num(argv[3]) > sizeof buf ? sizeof buf : num(argv[3]);
    ssize_t n = read(fd, buf, want);
    if (n < 0) return report(-1);
    printf("ok ");
    for (ssize_t i = 0; i < n; i++) printf("%02x", buf[i]);
    printf("\n");
    return 0;
  }
  if (!strcmp(cmd, "mknod") && argc >= 6) {
    mode_t type = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
    return report(mknod(argv[2], type | 0600, makedev(num(argv[4]), num(argv[5]))));
  }
  if (!strcmp(cmd, "swap") && argc >= 5) {
    time_t end = time(NULL) + (time_t)num(argv[4]);
    long n = 0;
    while (time(NULL) < end)
      for (int i = 0; i < 1000; i++, n++)
        if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], 2 /* RENAME_EXCHANGE */) < 0) return report(-1);
    return report(n);
  }
  if (!strcmp(cmd, "ids")) {
    printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    printf("setresuid(0): ");
    return report(setresuid(0, 0, 0));
  }
  if (!strcmp(cmd, "alloc") && argc >= 3) {
    size_t mib = num(argv[2]);
    for (size_t i = 0; i < mib; i++) {
      char *m = malloc(1 << 20);
      if (!m) return report(-1);
      memset(m, 1, 1 << 20);
    }
    return report(0);
  }
  if (!strcmp(cmd, "chrootesc") && argc >= 3) {
    mkdir("/tmp/.esc", 0700);
    int keep = open("/", O_RDONLY | O_DIRECTORY);
    if (chroot("/tmp/.esc") < 0) return report(-1);
    if (fchdir(keep) < 0) return report(-1); /* cwd is now outside the new root */
    for (int i = 0; i < 64; i++) if (chdir("..") < 0) return report(-1);
    if (chroot(".") < 0) return report(-1);
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return report(-1);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("ok %s", buf);
    return 0;
  }
  if (!strcmp(cmd, "exehunt") && argc >= 3) return exehunt((int)num(argv[2]));
  fprintf(stderr, "probe: bad arguments\n");
  return 2;
}
