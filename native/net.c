/* Host-side network helpers.
 * portInUse(family 4|6, udp, address, port): whether binding that address and port fails with
 * EADDRINUSE, i.e. something on the host holds it (a published port must be free before the
 * container starts). Binding asks the kernel directly; reading /proc/net/tcp walks every socket. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <string.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "throw.h"

#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_default, NULL }

/* An integer argument in [lo, hi] (no fraction, no NaN). */
static bool int_in(napi_env env, napi_value v, double lo, double hi, int32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d || d < lo || d > hi || d != (double)(int32_t)d)
    return false;
  *out = (int32_t)d;
  return true;
}

static napi_value PortInUse(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4], r;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t family = 0, port = 0;
  bool udp = false;
  char addr[64];
  size_t len = 0;
  if (argc < 4 || !int_in(env, a[0], 4, 6, &family) || family == 5 || napi_get_value_bool(env, a[1], &udp) != napi_ok
      || napi_get_value_string_utf8(env, a[2], addr, sizeof addr, &len) != napi_ok || len >= sizeof addr - 1
      || !int_in(env, a[3], 1, 65535, &port)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "portInUse: (4|6, udp, address, port)");
    return NULL;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (family == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &s->sin_addr) != 1) return throw_errno(env, "portInUse: address", EINVAL);
    sl = sizeof *s;
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &s->sin6_addr) != 1) return throw_errno(env, "portInUse: address", EINVAL);
    sl = sizeof *s;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  /* TIME_WAIT leftovers do not hold a port against a new listener; a v6 check is for v6 alone. */
  if (!udp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  int rc = bind(fd, (struct sockaddr *)&ss, sl);
  int e = errno;
  close(fd);
  if (rc < 0 && e != EADDRINUSE) return throw_errno(env, "bind", e);
  napi_get_boolean(env, rc < 0, &r);
  return r;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* unixRequest(path, request, timeoutMs) -> the reply: connect to a stream socket, send the request,
 * shut our side, read until the peer closes (slirp4netns's API answers one request a connection). */
static napi_value UnixRequest(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3], r;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t plen = 0, qlen = 0;
  int32_t timeout = 0;
  char req[4096];
  if (argc < 3 || napi_get_value_string_utf8(env, a[0], sa.sun_path, sizeof sa.sun_path, &plen) != napi_ok
      || plen == 0 || plen >= sizeof sa.sun_path - 1
      || napi_get_value_string_utf8(env, a[1], req, sizeof req, &qlen) != napi_ok || qlen >= sizeof req - 1
      || !int_in(env, a[2], 1, 600000, &timeout)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "unixRequest: (path < 107 bytes, request < 4 KiB, timeoutMs)");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "connect", e);
  }
  for (size_t off = 0; off < qlen;) {
    ssize_t n = write(fd, req + off, qlen - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "write", e);
    }
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  long long end = now_ms() + timeout;
  for (;;) {
    long long left = end - now_ms();
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      int e = pr == 0 ? ETIMEDOUT : errno;
      free(buf);
      close(fd);
      return throw_errno(env, "read", e);
    }
    if (len + 4096 > cap) {
      char *nb = cap >= (1 << 20) ? NULL : realloc(buf, cap = cap ? cap * 2 : 8192);
      if (!nb) {
        free(buf);
        close(fd);
        return throw_errno(env, "read", ENOBUFS);
      }
      buf = nb;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return throw_errno(env, "read", e);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  napi_create_string_utf8(env, buf ? buf : "", len, &r);
  free(buf);
  return r;
}

void net_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = { FN("portInUse", PortInUse), FN("unixRequest", UnixRequest) };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
