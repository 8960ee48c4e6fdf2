/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"
#include "ow-error.h"
#include "report-io.h"

/* Longest -p file name: two 20-digit timestamps, "_", ".txt"/".sum", and
 * room for the temporary name's suffix (the reference's own bound). */
#define REPORT_FILE_NAME_MAX (2 * 20 + 1 + 4 + 2)

/* The reference reads counts with strtoul() and accepts whatever it makes
 * of the text as long as nothing follows the number (so "" is 0 and "-1"
 * wraps), then keeps 32 bits. */
static bool parse_count(const char *arg, uint32_t *ret) {
        char *end;
        unsigned long v = strtoul(arg, &end, 10);
        if (*end)
                return false;
        *ret = (uint32_t) v;
        return true;
}

int report_args_parse(OwReportOptions *o, float **percentiles, int c, const char *arg,
                      const char **ret_msg) {
        char *end;

        switch (c) {
        case 'a': {
                float *p = NULL;
                size_t n = 0;
                if (ow_report_parse_percentiles(arg, &p, &n) < 0) {
                        *ret_msg = "Invalid '-a' alpha list .";
                        return -EINVAL;
                }
                free(*percentiles);
                *percentiles = p;
                o->percentiles = p;
                o->n_percentiles = n;
                return 1;
        }
        case 'b': {
                /* Stored as a float before the check, as the reference does
                 * (1e-50 becomes 0 and is refused). */
                float v = (float) strtod(arg, &end);
                if (*end || !(v > 0.0f)) {
                        *ret_msg = "Invalid '-b' value. Positive float expected";
                        return -EINVAL;
                }
                o->bucket_width = v;
                return 1;
        }
        case 'd':
                if (strlen(arg) + 1 + REPORT_FILE_NAME_MAX + 1 > PATH_MAX) {
                        *ret_msg = "-d: pathname too long.";
                        return -EINVAL;
                }
                o->save_dir = arg;
                return 1;
        case 'M':
                o->machine = true;
                return 1;
        case 'n':
                /* Only the first character counts, as with the reference. */
                if (ow_report_units(arg[0], NULL, NULL) < 0) {
                        *ret_msg = "Invalid '-n' value.";
                        return -EINVAL;
                }
                o->units = arg[0];
                return 1;
        case 'N':
                if (!parse_count(arg, &o->sub_packets)) {
                        *ret_msg = "Invalid \"-N\" value. Positive integer expected";
                        return -EINVAL;
                }
                return 1;
        case 'p':
                o->print_files = true;
                return 1;
        case 'Q':
                o->quiet = true;
                return 1;
        case 'R':
                o->raw = true;
                return 1;
        case 'v':
                o->records = true;
                if (arg && !parse_count(arg, &o->records_limit)) {
                        *ret_msg = "Invalid \"-v\" value. Positive integer expected";
                        return -EINVAL;
                }
                return 1;
        case 'U':
                o->unix_time = true;
                return 1;
        case REPORT_ARG_JSON:
                o->json = true;
                return 1;
        default:
                return 0;
        }
}

void report_usage_output_args(FILE *f) {
        fputs("              [Output Args]\n"
              "\n"
              "   -a alpha       report an additional percentile level for the delays\n"
              "   -b bucketwidth bin size for histogram calculations\n"
              "   -M             print machine (perl) readable summary\n"
              "   -n units       'n','u','m', or 's'\n"
              "   -N count       number of test packets (to summarize per sub-session)\n"
              "   -Q             run the test and exit without reporting statistics\n"
              "   -R             print RAW data: \"SEQNO STIME SS SERR RTIME RS RERR TTL\\n\"\n"
              "   -v[N]          print out individual delays. You can supply an optional N here to limit "
              "the "
              "print to the first N packets\n"
              "   -U             Adds UNIX timestamps when printing individual delays\n",
              f);
}

int report_stdout_write(void *userdata, const char *data, size_t len) {
        (void) userdata;
        return fwrite(data, 1, len, stdout) == len ? 0 : -EIO;
}

/* --- -p files --------------------------------------------------------------- */

static int file_write(void *userdata, const char *data, size_t len) {
        ReportFiles *rf = userdata;
        return fwrite(data, 1, len, rf->f) == len ? 0 : -EIO;
}

static int files_open(void *userdata, OwSink *ret) {
        ReportFiles *rf = userdata;
        mode_t mask;
        int fd;

        free(rf->tmp);
        if (asprintf(&rf->tmp, "%s%s.%s.XXXXXX", rf->dir ? rf->dir : "", rf->dir ? "/" : "", rf->prog) < 0) {
                rf->tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(rf->tmp, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                fprintf(stderr, "%s: OWStatsParse: fopen(%s): %s\n", rf->prog, rf->tmp, strerror(-r));
                free(rf->tmp);
                rf->tmp = NULL;
                rf->reported = true;
                return r;
        }
        /* The permissions fopen() would have given it. */
        mask = umask(0);
        umask(mask);
        (void) fchmod(fd, 0666 & ~mask);
        rf->f = fdopen(fd, "w");
        if (!rf->f) {
                int r = -errno;
                close(fd);
                unlink(rf->tmp);
                return r;
        }
        *ret = (OwSink){ .write = file_write, .userdata = rf };
        return 0;
}

static int files_close(void *userdata, const char *name) {
        ReportFiles *rf = userdata;
        int r = 0;

        if (rf->f && fclose(rf->f) != 0)
                r = -errno;
        rf->f = NULL;
        if (name && r == 0 && link(rf->tmp, name) != 0) {
                r = -errno;
                fprintf(stderr, "%s: OWStatsParse: link(%s,%s): %s\n", rf->prog, rf->tmp, name,
                        strerror(-r));
                rf->reported = true;
        }
        (void) unlink(rf->tmp);
        free(rf->tmp);
        rf->tmp = NULL;
        if (r == 0)
                fflush(stdout);
        return r;
}

OwReportFiles report_files_hooks(ReportFiles *rf) {
        return (OwReportFiles){ .open = files_open, .close = files_close, .userdata = rf };
}

/* --- Names ------------------------------------------------------------------ */

static const char *resolve(uint8_t ipvn, const uint8_t addr[OW_ADDR_SIZE], char *buf, size_t size) {
        SockAddr sa;

        if (sockaddr_from_owamp(ipvn, addr, 0, &sa) < 0)
                return NULL;
        if (getnameinfo(&sa.sa, sockaddr_len(&sa), buf, (socklen_t) size, NULL, 0, 0) != 0)
                return NULL;
        return buf;
}

void report_resolve_names(const OwSessionRequest *req, char *from, char *to, size_t size,
                          const char **ret_from, const char **ret_to) {
        *ret_from = resolve(req->ipvn, req->sender_addr, from, size);
        *ret_to = resolve(req->ipvn, req->receiver_addr, to, size);
}

/* --- .owp files ------------------------------------------------------------- */

static int read_all(int fd, void **ret, size_t *ret_size) {
        size_t size = 0, allocated = 0;
        char *buf = NULL;

        for (;;) {
                if (size == allocated) {
                        size_t n = allocated ? allocated * 2 : 65536;
                        char *p = realloc(buf, n);
                        if (!p) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = p;
                        allocated = n;
                }
                ssize_t k = read(fd, buf + size, allocated - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

int report_owp_load(ReportOwp *o, const char *path) {
        struct stat st;
        int fd, r;

        *o = (ReportOwp){};
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t) st.st_size <= SIZE_MAX) {
                void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (p != MAP_FAILED) {
                        o->data = p;
                        o->size = (size_t) st.st_size;
                        o->mapped = true;
                }
        }
        r = o->mapped ? 0 : read_all(fd, &o->data, &o->size);
        close(fd);
        return r;
}

int report_owp_parse(ReportOwp *o, bool resolve_names) {
        int r = ow_report_file_init(&o->rf, o->data, o->size);
        if (r < 0)
                return r;
        o->parsed = true;
        if (resolve_names && o->rf.session.request)
                report_resolve_names(o->rf.session.request, o->from, o->to, sizeof(o->from),
                                     &o->rf.session.from_host, &o->rf.session.to_host);
        return 0;
}

void report_owp_close(ReportOwp *o) {
        if (o->parsed)
                ow_report_file_done(&o->rf);
        if (o->mapped)
                munmap(o->data, o->size);
        else
                free(o->data);
        *o = (ReportOwp){};
}

int report_owp_print(const char *prog, const char *path, const char *fopen_name, const OwReportOptions *o) {
        _cleanup_(report_owp_close) ReportOwp owp = {};
        int r;

        r = report_owp_load(&owp, path);
        if (r < 0) {
                fprintf(stderr, "%s: fopen(%s): %s\n", prog, fopen_name, strerror(-r));
                return r;
        }
        /* -R needs no names; the reference does not look them up then. */
        r = report_owp_parse(&owp, !o->raw);
        if (r < 0) {
                fprintf(stderr, "%s: %s: not a valid session file: %s\n", prog, path, ow_strerror(r));
                fprintf(stderr, "%s: OWPReadDataHeader: Invalid file?\n", prog);
                fprintf(stderr, "%s: do_stats() failed.\n", prog);
                return r;
        }

        OwSink out = report_stdout_sink();
        ReportFiles files = { .prog = prog, .dir = o->save_dir };
        OwReportFiles hooks = report_files_hooks(&files);
        r = ow_report_session(&owp.rf.session, o, &out, &hooks);
        fflush(stdout);
        if (r < 0) {
                if (r == -OW_ERR_VERSION)
                        fprintf(stderr,
                                "%s: %s: statistics need a file of version 2 or later, this is version %u\n",
                                prog, path, owp.rf.file.version);
                else if (!files.reported)
                        fprintf(stderr, "%s: %s: %s\n", prog, path, ow_strerror(r));
                fprintf(stderr, "%s: %s\n", prog,
                        r == -OW_ERR_VERSION ? "OWPStatsCreate: failed" : "OWPStatsParse: failed");
                fprintf(stderr, "%s: do_stats() failed.\n", prog);
        }
        return r;
}
