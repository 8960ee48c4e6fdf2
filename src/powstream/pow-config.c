/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "net.h"
#include "ow-cfgtext.h"
#include "ow-diag.h"
#include "pow-config.h"

/* The unit hands the pass-phrase file over as this credential
 * (units/owamp-stream@.service: LoadCredential=). */
#define POW_CONFIG_CREDENTIAL "owamp-stream.pfs"
#define POW_CONFIG_MAX_ARGS 64

typedef enum ValueKind {
        V_STRING,   /* any non-empty text */
        V_UINT,     /* decimal, 0 allowed */
        V_POSITIVE, /* decimal > 0, a fraction allowed */
        V_DIRECTION,
        V_FAMILY,
        V_MODE,
        V_PORTS,
        V_BOOL,
        V_LOGLEVEL,
} ValueKind;

typedef struct Key {
        const char *name;
        ValueKind kind;
        const char *option; /* NULL: handled by name */
        uint64_t max;       /* V_UINT, V_POSITIVE's integer part */
} Key;

/* Every key, with the powstream option it becomes (powstream(1)). */
static const Key keys[] = {
        { "peer", V_STRING, NULL, 0 },
        { "server", V_STRING, NULL, 0 },
        { "direction", V_DIRECTION, NULL, 0 },
        { "interval", V_POSITIVE, "-i", 3600 },
        { "count", V_UINT, "-c", UINT32_MAX },
        { "summary-packets", V_UINT, "-N", UINT32_MAX },
        { "padding", V_UINT, "-s", 65535 },
        { "loss-timeout", V_POSITIVE, "-L", 3600 },
        { "end-delay", V_POSITIVE, "-E", 3600 },
        { "delay-start", V_UINT, "-z", UINT32_MAX },
        { "retry-delay", V_UINT, "-I", UINT32_MAX },
        { "port-range", V_PORTS, "-P", 0 },
        { "bucket-width", V_POSITIVE, "-b", 3600 },
        { "mode", V_MODE, "-A", 0 },
        { "key-id", V_STRING, "-u", 0 },
        { "pass-phrase-file", V_STRING, NULL, 0 },
        { "source", V_STRING, "-S", 0 },
        { "interface", V_STRING, "-B", 0 },
        { "family", V_FAMILY, NULL, 0 },
        { "directory", V_STRING, "-d", 0 },
        { "prometheus-dir", V_STRING, "--prometheus-dir", 0 },
        { "unix-time", V_BOOL, "-U", 0 },
        { "log-level", V_LOGLEVEL, "-g", 0 },
};

void pow_config_argv_done(PowConfigArgv *a) {
        for (int i = 0; a->argv && i < a->argc; i++)
                free(a->argv[i]);
        free(a->argv);
        *a = (PowConfigArgv){};
}

static bool value_ok(const Key *k, const char *v) {
        uint64_t u;
        uint32_t ns;
        uint16_t lo, hi;

        switch (k->kind) {
        case V_STRING:
                /* Not an option in disguise, and one line. */
                return v[0] && v[0] != '-';
        case V_UINT:
                return ow_cfg_parse_uint(v, k->max, &u) == 0;
        case V_POSITIVE:
                return ow_cfg_parse_decimal(v, k->max, &u, &ns) == 0 && (u > 0 || ns > 0);
        case V_DIRECTION:
                return streq(v, "from") || streq(v, "to");
        case V_FAMILY:
                return streq(v, "any") || streq(v, "ipv4") || streq(v, "ipv6");
        case V_MODE:
                if (!v[0] || strspn(v, "AEOaeo") != strlen(v))
                        return false;
                return true;
        case V_PORTS:
                return net_parse_port_range(v, &lo, &hi) == 0 && (lo == 0 || hi - lo + 1 >= 2);
        case V_BOOL:
                return streq(v, "yes") || streq(v, "no");
        case V_LOGLEVEL:
                for (const char *const *l = (const char *const[]){ "NONE", "FATAL", "WARN", "INFO", "DEBUG", "ALL",
                                                                   NULL };
                     *l; l++)
                        if (streq(v, *l))
                                return true;
                return false;
        }
        assert_not_reached();
}

static const char *value_hint(ValueKind kind) {
        switch (kind) {
        case V_STRING:
                return "a non-empty value not starting with '-'";
        case V_UINT:
                return "an unsigned integer in range";
        case V_POSITIVE:
                return "a positive decimal number of seconds in range";
        case V_DIRECTION:
                return "'from' or 'to'";
        case V_FAMILY:
                return "'any', 'ipv4' or 'ipv6'";
        case V_MODE:
                return "letters of A, E and O";
        case V_PORTS:
                return "a port range LOW-HIGH of at least 2 ports, or 0";
        case V_BOOL:
                return "'yes' or 'no'";
        case V_LOGLEVEL:
                return "NONE, FATAL, WARN, INFO, DEBUG or ALL";
        }
        assert_not_reached();
}

typedef struct Args {
        char *v[POW_CONFIG_MAX_ARGS + 1];
        int n;
} Args;

static int args_add(Args *a, const char *s) {
        if (a->n >= POW_CONFIG_MAX_ARGS)
                return -E2BIG;
        a->v[a->n] = strdup(s);
        if (!a->v[a->n])
                return -ENOMEM;
        a->n++;
        return 0;
}

static void args_done(Args *a) {
        for (int i = 0; i < a->n; i++)
                free(a->v[i]);
        a->n = 0;
}

static int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uint64_t) st.st_size > OW_CFG_MAX_FILE_SIZE)
                return -EFBIG;
        size_t cap = (size_t) st.st_size + 1, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len == cap)
                        return -EFBIG; /* grew while read */
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* pass-phrase-file: absolute as it is; relative, from the unit's
 * credentials when there are (the unit's LoadCredential=), else next to the
 * config file. */
static int pass_phrase_path(const char *file, const char *value, char **ret) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        int k;

        if (value[0] == '/')
                k = asprintf(ret, "%s", value);
        else if (creds && creds[0])
                k = asprintf(ret, "%s/%s", creds, value);
        else {
                _cleanup_free_ char *copy = strdup(file);
                if (!copy)
                        return -ENOMEM;
                k = asprintf(ret, "%s/%s", dirname(copy), value);
        }
        return k < 0 ? -ENOMEM : 0;
}

static int fail_at(const char *file, unsigned line, const char *fmt, ...) _printf_(3, 4);
static int fail_at(const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "powstream: %s:%u: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

/* The file's lines into options (a) and operands (peer, server). */
static int parse(const char *file, const char *buf, size_t len, Args *a, char **peer, char **server) {
        _cleanup_free_ char *pfs = NULL;
        bool seen[ELEMENTSOF(keys)] = {};
        unsigned seen_line[ELEMENTSOF(keys)] = {};
        bool have_key_id = false;
        OwCfgReader rd;
        OwDiag diag = {};
        int r;

        ow_cfg_reader_init(&rd, buf, len, file);
        while ((r = ow_cfg_reader_next(&rd, &diag)) > 0) {
                size_t n = ow_cfg_strip_comment(rd.text, rd.text_len);
                unsigned line = ow_cfg_reader_line_at(&rd, 0);
                char q[OW_CFG_QUOTE_MAX], q2[OW_CFG_QUOTE_MAX];
                rd.text[n] = '\0';

                char *eq = strchr(rd.text, '=');
                if (!eq) {
                        r = fail_at(file, line, "'%s': 'key = value' expected", ow_cfg_quote(rd.text, n, q));
                        break;
                }
                size_t kn = (size_t) (eq - rd.text);
                while (kn > 0 && ow_cfg_isspace(rd.text[kn - 1]))
                        kn--;
                const char *v = eq + 1;
                while (ow_cfg_isspace(*v))
                        v++;
                const Key *k = NULL;
                size_t ki = 0;
                for (; ki < ELEMENTSOF(keys); ki++)
                        if (strlen(keys[ki].name) == kn && strncmp(keys[ki].name, rd.text, kn) == 0) {
                                k = &keys[ki];
                                break;
                        }
                if (!k) {
                        r = fail_at(file, line, "unknown key '%s'", ow_cfg_quote(rd.text, kn, q));
                        break;
                }
                if (seen[ki]) {
                        r = fail_at(file, line, "'%s' given twice (first on line %u)", k->name, seen_line[ki]);
                        break;
                }
                if (!value_ok(k, v)) {
                        r = fail_at(file, line, "%s = '%s': %s expected", k->name, ow_cfg_quote(v, strlen(v), q2),
                                    value_hint(k->kind));
                        break;
                }
                seen[ki] = true;
                seen_line[ki] = line;

                if (streq(k->name, "peer"))
                        r = (*peer = strdup(v)) ? 0 : -ENOMEM;
                else if (streq(k->name, "server"))
                        r = (*server = strdup(v)) ? 0 : -ENOMEM;
                else if (streq(k->name, "direction"))
                        r = streq(v, "to") ? args_add(a, "-t") : 0;
                else if (streq(k->name, "family"))
                        r = streq(v, "any") ? 0 : args_add(a, streq(v, "ipv4") ? "-4" : "-6");
                else if (streq(k->name, "pass-phrase-file")) {
                        free(pfs);
                        pfs = NULL;
                        r = pass_phrase_path(file, v, &pfs);
                } else if (k->kind == V_BOOL)
                        r = streq(v, "yes") ? args_add(a, k->option) : 0;
                else {
                        if (streq(k->name, "key-id"))
                                have_key_id = true;
                        r = args_add(a, k->option);
                        if (r >= 0)
                                r = args_add(a, v);
                }
                if (r < 0)
                        break;
        }
        if (r < 0 && diag.message[0])
                fprintf(stderr, "powstream: %s:%u: %s\n", file, diag.line, diag.message);
        ow_cfg_reader_done(&rd);
        if (r < 0)
                return r;
        if (!*peer) {
                fprintf(stderr, "powstream: %s: no 'peer' given\n", file);
                return -EINVAL;
        }
        if (pfs && !have_key_id) {
                fprintf(stderr, "powstream: %s: 'pass-phrase-file' without 'key-id'\n", file);
                return -EINVAL;
        }
        if (have_key_id) {
                if (!pfs) {
                        r = pass_phrase_path(file, POW_CONFIG_CREDENTIAL, &pfs);
                        if (r < 0)
                                return r;
                }
                r = args_add(a, "-k");
                if (r >= 0)
                        r = args_add(a, pfs);
        }
        return r;
}

/* powstream's long options with a separate argument (pow-options.c). */
static bool long_option_takes_argument(const char *name) {
        static const char *const with_argument[] = {
                "auth-mode", "pass-phrase-file", "source",    "interface",    "user",      "retry-delay",
                "count",     "end-delay",        "interval",  "loss-timeout", "padding",   "delay-start",
                "port-range", "bucket-width",    "directory", "facility",     "log-level", "sub-session",
                "name",      "prometheus-dir",
        };
        for (size_t i = 0; i < ELEMENTSOF(with_argument); i++)
                if (streq(name, with_argument[i]))
                        return true;
        return false;
}

int pow_config_apply(int argc, char **argv, PowConfigArgv *ret) {
        _cleanup_free_ char *buf = NULL, *peer = NULL, *server = NULL;
        const char *file = NULL;
        int cfg_at = -1, cfg_n = 0, end = argc;
        size_t len = 0;
        Args a = {};
        int r;

        /* Find --config among the options (they end at "--" or at the first
         * operand, as powstream's parser stops there). */
        for (int i = 1; i < argc; i++) {
                const char *s = argv[i];
                if (streq(s, "--")) {
                        end = i;
                        break;
                }
                if (s[0] != '-' || !s[1]) {
                        end = i;
                        break;
                }
                if (streq(s, "--config")) {
                        if (i + 1 >= argc) {
                                fprintf(stderr, "powstream: --config: a file expected\n");
                                return -EINVAL;
                        }
                        file = argv[i + 1];
                        cfg_at = i;
                        cfg_n = 2;
                        i++;
                } else if (startswith(s, "--config=")) {
                        file = s + strlen("--config=");
                        cfg_at = i;
                        cfg_n = 1;
                } else if (s[1] != '-' && strchr("AkSBuIcEiLszPbdegN", s[strlen(s) - 1]) && !s[2]) {
                        i++; /* a short option's separate argument */
                } else if (s[1] == '-' && !strchr(s, '=') && long_option_takes_argument(s + 2))
                        i++;
        }
        if (!file)
                return 0;
        if (!file[0]) {
                fprintf(stderr, "powstream: --config: a file expected\n");
                return -EINVAL;
        }
        if (end < argc && !(streq(argv[end], "--") && end + 1 == argc)) {
                fprintf(stderr, "powstream: --config %s: the peer comes from the file, not the command line\n", file);
                return -EINVAL;
        }

        r = read_file(file, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "powstream: --config %s: %s\n", file, strerror(-r));
                return r;
        }
        r = args_add(&a, argv[0]);
        if (r >= 0)
                r = parse(file, buf, len, &a, &peer, &server);
        /* The command line's options after the file's: they win. */
        for (int i = 1; r >= 0 && i < end; i++)
                if (i < cfg_at || i >= cfg_at + cfg_n)
                        r = args_add(&a, argv[i]);
        if (r >= 0)
                r = args_add(&a, "--");
        if (r >= 0)
                r = args_add(&a, peer);
        if (r >= 0 && server)
                r = args_add(&a, server);
        if (r < 0) {
                if (r == -E2BIG || r == -ENOMEM)
                        fprintf(stderr, "powstream: --config %s: %s\n", file, strerror(-r));
                args_done(&a);
                return r;
        }

        char **v = calloc((size_t) a.n + 1, sizeof(char *));
        if (!v) {
                args_done(&a);
                fprintf(stderr, "powstream: out of memory\n");
                return -ENOMEM;
        }
        memcpy(v, a.v, (size_t) a.n * sizeof(char *));
        *ret = (PowConfigArgv){ .argc = a.n, .argv = v };
        return 1;
}
