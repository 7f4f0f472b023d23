/* A setuid-root test binary: prints the ids it runs with (euid 0 means it gained root). */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("ruid=%d euid=%d\n", (int)getuid(), (int)geteuid());
  return 0;
}
