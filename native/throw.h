/* The one way the addon reports a failed call to JavaScript: an Error with the message
 * "CALL: strerror (ENAME)" and code (the errno's name), errno and syscall set (native/nsbox.c). */
#ifndef NSBOX_THROW_H
#define NSBOX_THROW_H
#include <node_api.h>

napi_value throw_errno(napi_env env, const char *call, int err);

#endif
