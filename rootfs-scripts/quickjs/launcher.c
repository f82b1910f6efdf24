/*
 * Ignite's QuickJS launcher: runs one program with the QuickJS-ng engine and a JavaScript
 * bootstrap (bootstrap.js beside this file) that gives it a Node-like surface: console, process,
 * timers, TextEncoder/TextDecoder, ES modules and CommonJS with node_modules resolution.
 *
 *   quickjs ENTRY [ARGS...]
 *   quickjs --version                    prints the QuickJS-ng version
 *   quickjs --compile-bootstrap SRC OUT  compiles bootstrap.js to bytecode (at build time:
 *                                        parsing 55 KB of JavaScript on every start costs more
 *                                        than the rest of a hello world)
 *
 * This file stays small on purpose. It owns only what JavaScript cannot do: the engine's
 * module-loader callbacks, the promise-rejection tracker, the event loop's sleep, and a handful
 * of host functions. Everything else -- resolution, CommonJS, formatting, timers -- is in the
 * bootstrap, which receives the host functions as an argument and never puts them on globalThis.
 *
 * What the program can reach through this file, even if it got hold of a host function itself
 * (QuickJS's Error.prepareStackTrace call sites expose the functions on the stack):
 *   write(fd, string)        fd 1 or 2 only
 *   readFile(path)           read a regular file as UTF-8 text (what the sandbox lets it read)
 *   stat(path), realpath(path)
 *   compileScript(src, name) evaluate a script (no more than indirect eval already allows)
 *   now(), hrtime()          monotonic clock
 *   randomFill(uint8array)   getrandom(2)
 *   exit(code)
 *   promiseState(promise)    [state, result], for console.log(promise)
 * and the data env, argv, cwd, pid, the engine's version. There is no quickjs-libc here: no std/os modules, no
 * file writing, no exec or popen, no sockets, no workers, no dlopen of native modules.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "quickjs.h"

/* The bootstrap's source (the name its stack frames carry) and the bytecode that runs, found
 * beside the launcher: <dir of argv[0]>/../lib/quickjs/ (so /usr/local/lib/quickjs/ in the
 * rootfs, and also when the rootfs's binary is run from the host, as benches do); the absolute
 * path when the launcher was started by a bare name. */
#ifndef IGNITE_BOOTSTRAP
#define IGNITE_BOOTSTRAP "/usr/local/lib/quickjs/bootstrap.js"
#endif
#define BOOTSTRAP_BYTECODE_NAME "bootstrap.qbc"
#define BOOTSTRAP_BYTECODE_BESIDE "../lib/quickjs/" BOOTSTRAP_BYTECODE_NAME
#define BOOTSTRAP_BYTECODE_ABSOLUTE "/usr/local/lib/quickjs/" BOOTSTRAP_BYTECODE_NAME

/* Exit status when the launcher itself fails (not the program): EX_SOFTWARE. */
#define LAUNCHER_FAILED 70
/* Largest source file the loader reads; larger is surely not a module. */
#define MAX_FILE_SIZE (256u << 20)

extern char **environ;

/* The bootstrap's entry points, called from C. */
static struct {
    JSValue resolve;   /* (specifier, referrer) -> absolute module name */
    JSValue load;      /* (name, attributes) -> ESM source string | { exports, names } */
    JSValue meta;      /* (import.meta, name) */
    JSValue main;      /* (entry) */
    JSValue timers;    /* () -> ms until the next timer, 0 = run again now, -1 = none */
    JSValue rejection; /* (reason, promise): a rejection nobody handled */
    JSValue uncaught;  /* (error): an exception nothing caught */
    JSValue idle;      /* () -> true if the loop has more work (beforeExit scheduled some) */
    JSValue finish;    /* () -> exits with process.exitCode */
} hooks;

/* Rejected promises without a handler yet; checked after the microtask queue drains. */
typedef struct {
    JSValue promise;
    JSValue reason;
} Rejection;
static Rejection *rejections;
static size_t n_rejections, cap_rejections;

static void die(const char *what)
{
    fprintf(stderr, "quickjs launcher: %s\n", what);
    _exit(LAUNCHER_FAILED);
}

/* Last resort when the bootstrap cannot report an error itself. */
static void die_exception(JSContext *ctx, const char *when)
{
    JSValue exc = JS_GetException(ctx);
    const char *msg = JS_ToCString(ctx, exc);
    JSValue stack = JS_IsObject(exc) ? JS_GetPropertyStr(ctx, exc, "stack") : JS_UNDEFINED;
    const char *st = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
    fprintf(stderr, "quickjs launcher: %s: %s\n%s", when, msg ? msg : "(unprintable exception)", st ? st : "");
    _exit(LAUNCHER_FAILED);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* a closed pipe or full disk: nothing sensible left to do with output */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static JSValue throw_errno(JSContext *ctx, const char *op, const char *path, int err)
{
    JSValue e = JS_NewError(ctx);
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "%s, %s '%s'", strerror(err), op, path);
    JS_DefinePropertyValueStr(ctx, e, "message", JS_NewString(ctx, msg), JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_DefinePropertyValueStr(ctx, e, "code", JS_NewString(ctx, err == ENOENT ? "ENOENT" : err == EISDIR ? "EISDIR" : "EIO"),
                              JS_PROP_C_W_E);
    JS_DefinePropertyValueStr(ctx, e, "path", JS_NewString(ctx, path), JS_PROP_C_W_E);
    return JS_Throw(ctx, e);
}

/* Reads a whole regular file; NULL with errno set on failure. */
static char *read_file(const char *path, size_t *plen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    else if (!S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE_SIZE)
        err = EINVAL;
    if (err) {
        close(fd);
        errno = err;
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > MAX_FILE_SIZE) {
                free(buf);
                close(fd);
                errno = EINVAL;
                return NULL;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            free(buf);
            close(fd);
            errno = err;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *plen = len;
    return buf;
}

/* ---- host functions ------------------------------------------------------------------------ */

static JSValue host_write(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int fd;
    if (JS_ToInt32(ctx, &fd, argv[0]))
        return JS_EXCEPTION;
    if (fd != 1 && fd != 2)
        return JS_ThrowRangeError(ctx, "write: only stdout (1) and stderr (2)");
    size_t len;
    const char *s = JS_ToCStringLen(ctx, &len, argv[1]);
    if (!s)
        return JS_EXCEPTION;
    write_all(fd, s, len);
    JS_FreeCString(ctx, s);
    return JS_UNDEFINED;
}

static JSValue host_read_file(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *path = JS_ToCString(ctx, argv[0]);
    if (!path)
        return JS_EXCEPTION;
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        JSValue e = throw_errno(ctx, "open", path, errno);
        JS_FreeCString(ctx, path);
        return e;
    }
    JS_FreeCString(ctx, path);
    JSValue s = JS_NewStringLen(ctx, buf, len);
    free(buf);
    return s;
}

/* 0: missing, 1: regular file, 2: directory, 3: something else. Follows symlinks. */
static JSValue host_stat(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *path = JS_ToCString(ctx, argv[0]);
    if (!path)
        return JS_EXCEPTION;
    struct stat st;
    int kind = stat(path, &st) < 0 ? 0 : S_ISREG(st.st_mode) ? 1 : S_ISDIR(st.st_mode) ? 2 : 3;
    JS_FreeCString(ctx, path);
    return JS_NewInt32(ctx, kind);
}

static JSValue host_realpath(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *path = JS_ToCString(ctx, argv[0]);
    if (!path)
        return JS_EXCEPTION;
    char buf[PATH_MAX];
    char *res = realpath(path, buf);
    JS_FreeCString(ctx, path);
    return res ? JS_NewString(ctx, res) : JS_NULL;
}

/* Evaluates a classic script under a file name (for stack traces); the CommonJS loader wraps a
 * module's source in a function expression and calls this to get the function. */
static JSValue host_compile_script(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t len;
    const char *src = JS_ToCStringLen(ctx, &len, argv[0]);
    if (!src)
        return JS_EXCEPTION;
    const char *name = JS_ToCString(ctx, argv[1]);
    if (!name) {
        JS_FreeCString(ctx, src);
        return JS_EXCEPTION;
    }
    JSValue v = JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_GLOBAL);
    JS_FreeCString(ctx, name);
    JS_FreeCString(ctx, src);
    return v;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static JSValue host_now(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    return JS_NewFloat64(ctx, (double)monotonic_ns() / 1e6);
}

static JSValue host_hrtime(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    return JS_NewBigInt64(ctx, monotonic_ns());
}

static JSValue host_random_fill(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t len;
    uint8_t *buf = JS_GetUint8Array(ctx, &len, argv[0]);
    if (!buf)
        return JS_EXCEPTION;
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return JS_ThrowInternalError(ctx, "getrandom: %s", strerror(errno));
        done += (size_t)n;
    }
    return JS_UNDEFINED;
}

static JSValue host_promise_state(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    JSPromiseStateEnum state = JS_PromiseState(ctx, argv[0]);
    if ((int)state < 0)
        return JS_ThrowTypeError(ctx, "not a promise");
    JSValue r = JS_NewArray(ctx);
    JS_SetPropertyUint32(ctx, r, 0, JS_NewInt32(ctx, (int32_t)state));
    if (state != JS_PROMISE_PENDING)
        JS_SetPropertyUint32(ctx, r, 1, JS_PromiseResult(ctx, argv[0]));
    return r;
}

static JSValue host_exit(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int code;
    if (JS_ToInt32(ctx, &code, argv[0]))
        code = 1;
    /* Output is written unbuffered, so there is nothing to flush and no reason to unwind. */
    _exit(code & 0xff);
}

static const JSCFunctionListEntry host_funcs[] = {
    JS_CFUNC_DEF("write", 2, host_write),
    JS_CFUNC_DEF("readFile", 1, host_read_file),
    JS_CFUNC_DEF("stat", 1, host_stat),
    JS_CFUNC_DEF("realpath", 1, host_realpath),
    JS_CFUNC_DEF("compileScript", 2, host_compile_script),
    JS_CFUNC_DEF("now", 0, host_now),
    JS_CFUNC_DEF("hrtime", 0, host_hrtime),
    JS_CFUNC_DEF("randomFill", 1, host_random_fill),
    JS_CFUNC_DEF("promiseState", 1, host_promise_state),
    JS_CFUNC_DEF("exit", 1, host_exit),
};

static JSValue make_host(JSContext *ctx, int argc, char **argv)
{
    JSValue host = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, host, host_funcs, sizeof host_funcs / sizeof host_funcs[0]);

    JSValue env = JS_NewObject(ctx);
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e)
            continue;
        JSAtom key = JS_NewAtomLen(ctx, *e, (size_t)(eq - *e));
        JS_DefinePropertyValue(ctx, env, key, JS_NewString(ctx, eq + 1), JS_PROP_C_W_E);
        JS_FreeAtom(ctx, key);
    }
    JS_SetPropertyStr(ctx, host, "env", env);

    JSValue args = JS_NewArray(ctx);
    for (int i = 0; i < argc; i++)
        JS_SetPropertyUint32(ctx, args, (uint32_t)i, JS_NewString(ctx, argv[i]));
    JS_SetPropertyStr(ctx, host, "argv", args);
    JS_SetPropertyStr(ctx, host, "bootstrap", JS_NewString(ctx, IGNITE_BOOTSTRAP));
    JS_SetPropertyStr(ctx, host, "quickjsVersion", JS_NewString(ctx, JS_GetVersion()));
    JS_SetPropertyStr(ctx, host, "pid", JS_NewInt32(ctx, (int32_t)getpid()));
    char cwd[PATH_MAX];
    JS_SetPropertyStr(ctx, host, "cwd", JS_NewString(ctx, getcwd(cwd, sizeof cwd) ? cwd : "/"));
    return host;
}

/* ---- module loading: the bootstrap decides, C compiles ------------------------------------- */

static char *normalize(JSContext *ctx, const char *base, const char *name, void *opaque)
{
    JSValue args[2] = { JS_NewString(ctx, name), JS_NewString(ctx, base) };
    JSValue r = JS_Call(ctx, hooks.resolve, JS_UNDEFINED, 2, args);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, args[1]);
    if (JS_IsException(r))
        return NULL;
    const char *s = JS_ToCString(ctx, r);
    JS_FreeValue(ctx, r);
    if (!s)
        return NULL;
    char *out = js_strdup(ctx, s);
    JS_FreeCString(ctx, s);
    return out;
}

/* A module whose exports are the properties of a JavaScript object: CommonJS and JSON. */
static int synthetic_init(JSContext *ctx, JSModuleDef *m)
{
    JSValue desc = JS_GetModulePrivateValue(ctx, m);
    JSValue exports = JS_GetPropertyStr(ctx, desc, "exports");
    JSValue names = JS_GetPropertyStr(ctx, desc, "names");
    int64_t n = 0;
    int ret = JS_GetLength(ctx, names, &n);
    for (int64_t i = 0; ret == 0 && i < n; i++) {
        JSValue name = JS_GetPropertyInt64(ctx, names, i);
        const char *s = JS_ToCString(ctx, name);
        JS_FreeValue(ctx, name);
        if (!s) {
            ret = -1;
            break;
        }
        JSValue v = JS_GetPropertyStr(ctx, exports, s); /* a getter may throw */
        ret = JS_IsException(v) ? -1 : JS_SetModuleExport(ctx, m, s, v);
        JS_FreeCString(ctx, s);
    }
    if (ret == 0)
        ret = JS_SetModuleExport(ctx, m, "default", JS_DupValue(ctx, exports));
    JS_FreeValue(ctx, names);
    JS_FreeValue(ctx, exports);
    JS_FreeValue(ctx, desc);
    return ret;
}

static JSModuleDef *load_synthetic(JSContext *ctx, const char *name, JSValue desc)
{
    JSModuleDef *m = JS_NewCModule(ctx, name, synthetic_init);
    if (!m) {
        JS_FreeValue(ctx, desc);
        return NULL;
    }
    JSValue names = JS_GetPropertyStr(ctx, desc, "names");
    int64_t n = 0;
    if (JS_GetLength(ctx, names, &n) < 0) {
        JS_FreeValue(ctx, names);
        JS_FreeValue(ctx, desc);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        JSValue v = JS_GetPropertyInt64(ctx, names, i);
        const char *s = JS_ToCString(ctx, v);
        JS_FreeValue(ctx, v);
        if (!s || JS_AddModuleExport(ctx, m, s) < 0) {
            JS_FreeCString(ctx, s);
            JS_FreeValue(ctx, names);
            JS_FreeValue(ctx, desc);
            return NULL;
        }
        JS_FreeCString(ctx, s);
    }
    JS_FreeValue(ctx, names);
    if (JS_AddModuleExport(ctx, m, "default") < 0) {
        JS_FreeValue(ctx, desc);
        return NULL;
    }
    JS_SetModulePrivateValue(ctx, m, desc); /* takes ownership */
    return m;
}

static JSModuleDef *loader(JSContext *ctx, const char *name, void *opaque, JSValueConst attributes)
{
    JSValue args[2] = { JS_NewString(ctx, name), JS_DupValue(ctx, attributes) };
    JSValue r = JS_Call(ctx, hooks.load, JS_UNDEFINED, 2, args);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, args[1]);
    if (JS_IsException(r))
        return NULL;
    if (!JS_IsString(r))
        return load_synthetic(ctx, name, r);

    size_t len;
    const char *src = JS_ToCStringLen(ctx, &len, r);
    JS_FreeValue(ctx, r);
    if (!src)
        return NULL;
    JSValue fn = JS_Eval(ctx, src, len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    JS_FreeCString(ctx, src);
    if (JS_IsException(fn))
        return NULL;
    JSModuleDef *m = JS_VALUE_GET_PTR(fn);
    JSValue meta = JS_GetImportMeta(ctx, m);
    JSValue margs[2] = { meta, JS_NewString(ctx, name) };
    JSValue ok = JS_IsException(meta) ? JS_EXCEPTION : JS_Call(ctx, hooks.meta, JS_UNDEFINED, 2, margs);
    JS_FreeValue(ctx, margs[0]);
    JS_FreeValue(ctx, margs[1]);
    /* The engine holds its own reference to a compiled module. */
    JS_FreeValue(ctx, fn);
    if (JS_IsException(ok))
        return NULL;
    JS_FreeValue(ctx, ok);
    return m;
}

/* ---- unhandled rejections, event loop ------------------------------------------------------ */

static void rejection_tracker(JSContext *ctx, JSValueConst promise, JSValueConst reason, bool is_handled,
                              void *opaque)
{
    for (size_t i = 0; i < n_rejections; i++) {
        if (JS_VALUE_GET_PTR(rejections[i].promise) != JS_VALUE_GET_PTR(promise))
            continue;
        if (is_handled) {
            JS_FreeValue(ctx, rejections[i].promise);
            JS_FreeValue(ctx, rejections[i].reason);
            rejections[i] = rejections[--n_rejections];
        }
        return;
    }
    if (is_handled)
        return;
    if (n_rejections == cap_rejections) {
        size_t cap = cap_rejections ? cap_rejections * 2 : 16;
        Rejection *bigger = realloc(rejections, cap * sizeof *rejections);
        if (!bigger)
            die("out of memory tracking a rejected promise");
        rejections = bigger;
        cap_rejections = cap;
    }
    rejections[n_rejections].promise = JS_DupValue(ctx, promise);
    rejections[n_rejections].reason = JS_DupValue(ctx, reason);
    n_rejections++;
}

static void report_uncaught(JSContext *ctx)
{
    JSValue exc = JS_GetException(ctx);
    JSValue r = JS_Call(ctx, hooks.uncaught, JS_UNDEFINED, 1, &exc);
    JS_FreeValue(ctx, exc);
    if (JS_IsException(r))
        die_exception(ctx, "reporting an uncaught exception failed");
    JS_FreeValue(ctx, r);
}

/* Calls a hook; an exception escaping it is reported as uncaught. Returns the result. */
static JSValue call_hook(JSContext *ctx, JSValue hook, int argc, JSValue *argv)
{
    JSValue r = JS_Call(ctx, hook, JS_UNDEFINED, argc, argv);
    if (JS_IsException(r)) {
        report_uncaught(ctx);
        return JS_UNDEFINED;
    }
    return r;
}

static void drain_jobs(JSRuntime *rt)
{
    JSContext *jctx;
    int r;
    while ((r = JS_ExecutePendingJob(rt, &jctx)) != 0) {
        if (r < 0)
            report_uncaught(jctx);
    }
}

static void report_rejections(JSContext *ctx)
{
    while (n_rejections > 0) {
        Rejection r = rejections[0];
        rejections[0] = rejections[--n_rejections];
        JSValue args[2] = { r.reason, r.promise };
        JS_FreeValue(ctx, call_hook(ctx, hooks.rejection, 2, args));
        JS_FreeValue(ctx, r.reason);
        JS_FreeValue(ctx, r.promise);
    }
}

static void sleep_ms(double ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
    }
}

static void run_loop(JSContext *ctx)
{
    JSRuntime *rt = JS_GetRuntime(ctx);
    for (;;) {
        drain_jobs(rt);
        if (n_rejections > 0) {
            report_rejections(ctx);
            continue;
        }
        double delay = -1;
        JSValue d = call_hook(ctx, hooks.timers, 0, NULL);
        if (JS_ToFloat64(ctx, &delay, d))
            die_exception(ctx, "the timer hook returned no number");
        JS_FreeValue(ctx, d);
        if (delay == 0 || JS_IsJobPending(rt))
            continue;
        if (delay > 0) {
            sleep_ms(delay);
            continue;
        }
        JSValue more = call_hook(ctx, hooks.idle, 0, NULL);
        int again = JS_ToBool(ctx, more);
        JS_FreeValue(ctx, more);
        if (!again && !JS_IsJobPending(rt) && n_rejections == 0)
            return;
    }
}

/* QuickJS's own default is 1 MiB; let JavaScript use most of the main thread's stack (8 MiB
 * unless the rlimit says otherwise), keeping 1 MiB for C frames below it. */
static size_t js_stack_size(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur < (4u << 20))
        return 1u << 20;
    if (rl.rlim_cur == RLIM_INFINITY)
        return 7u << 20;
    return (size_t)rl.rlim_cur - (1u << 20);
}

static JSValue get_hook(JSContext *ctx, JSValue obj, const char *name)
{
    JSValue v = JS_GetPropertyStr(ctx, obj, name);
    if (!JS_IsFunction(ctx, v)) {
        fprintf(stderr, "quickjs launcher: bootstrap %s does not provide %s()\n", IGNITE_BOOTSTRAP, name);
        _exit(LAUNCHER_FAILED);
    }
    return v;
}

/* Build step: bootstrap source -> bytecode of the function expression it evaluates to. The
 * output depends only on the source and the engine (no addresses, no timestamps). */
static int compile_bootstrap(JSContext *ctx, const char *src_path, const char *out_path)
{
    size_t len;
    char *src = read_file(src_path, &len);
    if (!src) {
        fprintf(stderr, "quickjs launcher: cannot read %s: %s\n", src_path, strerror(errno));
        return LAUNCHER_FAILED;
    }
    JSValue fn = JS_Eval(ctx, src, len, IGNITE_BOOTSTRAP,
                         JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_STRICT | JS_EVAL_FLAG_COMPILE_ONLY);
    free(src);
    if (JS_IsException(fn))
        die_exception(ctx, "bootstrap failed to compile");
    size_t size;
    uint8_t *bytes = JS_WriteObject(ctx, &size, fn, JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE);
    JS_FreeValue(ctx, fn);
    if (!bytes)
        die_exception(ctx, "bootstrap failed to serialize");
    FILE *out = fopen(out_path, "wb");
    if (!out || fwrite(bytes, 1, size, out) != size || fclose(out) != 0) {
        fprintf(stderr, "quickjs launcher: cannot write %s: %s\n", out_path, strerror(errno));
        return LAUNCHER_FAILED;
    }
    js_free(ctx, bytes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ENTRY [ARGS...]\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s\n", JS_GetVersion());
        return 0;
    }
    JSRuntime *rt = JS_NewRuntime();
    if (!rt)
        die("cannot allocate the JavaScript runtime");
    JS_SetMaxStackSize(rt, js_stack_size());
    JS_SetModuleLoaderFunc2(rt, normalize, loader, NULL, NULL);
    JS_SetHostPromiseRejectionTracker(rt, rejection_tracker, NULL);
    JSContext *ctx = JS_NewContext(rt);
    if (!ctx)
        die("cannot allocate the JavaScript context");

    if (strcmp(argv[1], "--compile-bootstrap") == 0) {
        if (argc != 4) {
            fprintf(stderr, "usage: %s --compile-bootstrap SRC OUT\n", argv[0]);
            return 2;
        }
        return compile_bootstrap(ctx, argv[2], argv[3]);
    }

    /* Bytecode is only ever read from this file of the read-only rootfs, written at build time
     * by --compile-bootstrap; the program has no way to hand the engine bytecode. */
    char path[PATH_MAX];
    const char *slash = strrchr(argv[0], '/');
    int n = slash ? snprintf(path, sizeof path, "%.*s/%s", (int)(slash - argv[0]), argv[0], BOOTSTRAP_BYTECODE_BESIDE)
                  : snprintf(path, sizeof path, "%s", BOOTSTRAP_BYTECODE_ABSOLUTE);
    if (n < 0 || (size_t)n >= sizeof path)
        die("the launcher's path is too long");
    size_t len;
    char *bytecode = read_file(path, &len);
    if (!bytecode) {
        fprintf(stderr, "quickjs launcher: cannot read %s: %s\n", path, strerror(errno));
        return LAUNCHER_FAILED;
    }
    JSValue compiled = JS_ReadObject(ctx, (const uint8_t *)bytecode, len, JS_READ_OBJ_BYTECODE);
    free(bytecode);
    if (JS_IsException(compiled))
        die_exception(ctx, "bootstrap bytecode is unreadable");
    /* The bootstrap is one function expression; its argument is the host object. */
    JSValue fn = JS_EvalFunction(ctx, compiled);
    if (JS_IsException(fn))
        die_exception(ctx, "bootstrap failed");
    JSValue host = make_host(ctx, argc, argv);
    JSValue h = JS_Call(ctx, fn, JS_UNDEFINED, 1, &host);
    JS_FreeValue(ctx, host);
    JS_FreeValue(ctx, fn);
    if (JS_IsException(h))
        die_exception(ctx, "bootstrap failed");
    hooks.resolve = get_hook(ctx, h, "resolve");
    hooks.load = get_hook(ctx, h, "load");
    hooks.meta = get_hook(ctx, h, "meta");
    hooks.main = get_hook(ctx, h, "main");
    hooks.timers = get_hook(ctx, h, "timers");
    hooks.rejection = get_hook(ctx, h, "rejection");
    hooks.uncaught = get_hook(ctx, h, "uncaught");
    hooks.idle = get_hook(ctx, h, "idle");
    hooks.finish = get_hook(ctx, h, "finish");
    JS_FreeValue(ctx, h);

    JSValue entry = JS_NewString(ctx, argv[1]);
    JS_FreeValue(ctx, call_hook(ctx, hooks.main, 1, &entry));
    JS_FreeValue(ctx, entry);
    run_loop(ctx);
    JS_FreeValue(ctx, call_hook(ctx, hooks.finish, 0, NULL));
    die("the bootstrap's finish() returned instead of exiting");
}
