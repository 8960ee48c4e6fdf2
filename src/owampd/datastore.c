/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The data directory, laid out as the reference lays it out:
 *
 *   <datadir>/hierarchy/<class path>/<SID>.owp
 *
 * one .owp file per session this server receives (the class path is the
 * chain of class names from the root, "root/regular"), written exactly as
 * the reference's receiver writes it (PROTOCOL.md 11) and served to
 * Fetch-Session from any connection. The class path of each file is what
 * its disk usage is charged to; an index of every file by SID, rebuilt
 * from the directory at start-up and on every reload (and before a disk
 * limit refuses anything), finds a SID's file and keeps the accounting
 * from drifting. The reference's catalog/ directory of symbolic links is
 * neither needed nor written.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "owampd.h"
#include "ow-error.h"
#include "policy.h"

#define DATASTORE_MAX_DEPTH 64 /* class paths deeper than this are not ours */
#define OWP_SUFFIX ".owp"

char *datastore_path(const Server *s, const char *class_path, const OwSid *sid) {
        char hex[OW_SID_HEX_SIZE];
        char *p = NULL;
        if (asprintf(&p, "%s/" DATASTORE_HIERARCHY_DIR "/%s/%s" OWP_SUFFIX, s->datadir, class_path,
                     ow_sid_to_hex(sid, hex)) < 0)
                return NULL;
        return p;
}

StoredFile *datastore_find(Server *s, const OwSid *sid) {
        for (size_t i = 0; i < s->n_files; i++)
                if (ow_sid_equal(&s->files[i].sid, sid))
                        return &s->files[i];
        return NULL;
}

static void stored_file_done(StoredFile *f) {
        free(f->class_path);
}

void datastore_forget(Server *s, const OwSid *sid) {
        StoredFile *f = datastore_find(s, sid);
        if (!f)
                return;
        if (f->writer)
                f->writer->data_stored = false;
        stored_file_done(f);
        *f = s->files[--s->n_files];
        /* The moved entry's writer must not point at a stale slot: writers
         * find their entry by SID, never by pointer. */
}

void datastore_done(Server *s) {
        for (size_t i = 0; i < s->n_files; i++)
                stored_file_done(&s->files[i]);
        s->files = mfree(s->files);
        s->n_files = s->n_files_allocated = 0;
}

typedef struct ScanResult {
        StoredFile *files;
        size_t n, allocated;
        uint64_t octets;
        unsigned ignored;
} ScanResult;

static int scan_add(ScanResult *r, const OwSid *sid, const char *class_path, uint64_t size) {
        for (size_t i = 0; i < r->n; i++)
                if (ow_sid_equal(&r->files[i].sid, sid)) {
                        char hex[OW_SID_HEX_SIZE];
                        log_warning(
                                "Data directory: session %s is stored twice (%s and %s); using the first",
                                ow_sid_to_hex(sid, hex), r->files[i].class_path, class_path);
                        return 0;
                }
        if (r->n == r->allocated) {
                size_t k = r->allocated ? 2 * r->allocated : 64;
                StoredFile *n = reallocarray(r->files, k, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->files = n;
                r->allocated = k;
        }
        char *p = strdup(class_path);
        if (!p)
                return -ENOMEM;
        r->files[r->n++] = (StoredFile){ .sid = *sid, .class_path = p, .size = size };
        r->octets += size;
        return 0;
}

/* Every <SID>.owp below dir (an open directory at path rel under
 * hierarchy/), depth first. Takes ownership of dfd. */
static int scan_dir(ScanResult *res, int dfd, const char *rel, unsigned depth) {
        DIR *d = fdopendir(dfd);
        int r = 0;

        if (!d) {
                r = -errno;
                safe_close(dfd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone meanwhile */
                _cleanup_free_ char *sub = NULL;
                if (S_ISDIR(st.st_mode)) {
                        if (depth >= DATASTORE_MAX_DEPTH) {
                                res->ignored++;
                                continue;
                        }
                        if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        int fd = openat(dirfd(d), de->d_name,
                                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        r = scan_dir(res, fd, sub, depth + 1);
                        if (r < 0)
                                break;
                        continue;
                }
                size_t n = strlen(de->d_name);
                OwSid sid;
                if (!S_ISREG(st.st_mode) || !*rel || n != 2 * OW_SID_SIZE + strlen(OWP_SUFFIX) ||
                    !streq(de->d_name + 2 * OW_SID_SIZE, OWP_SUFFIX) ||
                    ow_sid_from_hex(de->d_name, 2 * OW_SID_SIZE, &sid) < 0) {
                        res->ignored++;
                        continue;
                }
                r = scan_add(res, &sid, rel, (uint64_t) st.st_size);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

/* Rebuild the index from the data directory. Files that running sessions
 * write keep their entries (their reservation, not their size so far). */
int datastore_scan(Server *s) {
        _cleanup_free_ char *top = NULL;
        ScanResult res = {};
        int r = 0;

        if (asprintf(&top, "%s/" DATASTORE_HIERARCHY_DIR, s->datadir) < 0)
                return -ENOMEM;
        int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                r = scan_dir(&res, fd, "", 0);
        else if (errno != ENOENT)
                r = -errno;
        if (r < 0) {
                for (size_t i = 0; i < res.n; i++)
                        stored_file_done(&res.files[i]);
                free(res.files);
                return log_error_errno(r, "Cannot read the data directory %s: %m", top);
        }

        /* Carry over the files being written. */
        for (size_t i = 0; i < s->n_files; i++) {
                StoredFile *f = &s->files[i];
                if (!f->writer)
                        continue;
                size_t k;
                for (k = 0; k < res.n && !ow_sid_equal(&res.files[k].sid, &f->sid); k++)
                        ;
                if (k == res.n) {
                        r = scan_add(&res, &f->sid, f->class_path, 0);
                        if (r < 0)
                                break;
                }
                res.octets -= res.files[k].size;
                res.files[k].size = f->size;
                res.files[k].writer = f->writer;
                res.octets += f->size;
        }
        if (r < 0) {
                for (size_t i = 0; i < res.n; i++)
                        stored_file_done(&res.files[i]);
                free(res.files);
                return r;
        }
        datastore_done(s);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->files_scanned_usec = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        s->files = res.files;
        s->n_files = res.n;
        s->n_files_allocated = res.allocated;
        log_debug("Data directory %s: %zu session file%s, %" PRIu64 " octets%s", top, res.n,
                  res.n == 1 ? "" : "s", res.octets, res.ignored ? " (other entries ignored)" : "");
        return 0;
}

static int mkdir_parents(const char *datadir, const char *class_path) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/" DATASTORE_HIERARCHY_DIR "/%s", datadir, class_path) < 0)
                return -ENOMEM;
        for (char *q = p + strlen(datadir) + 1;; q++) {
                if (*q == '/' || *q == 0) {
                        char c = *q;
                        *q = 0;
                        if (mkdir(p, 0750) < 0 && errno != EEXIST)
                                return -errno;
                        *q = c;
                        if (c == 0)
                                return 0;
                }
        }
}

int datastore_check_space(TestSession *t, uint64_t *ret_free, uint64_t *ret_needed) {
        Server *s = t->server;
        struct statvfs sv;

        if (statvfs(s->datadir, &sv) < 0)
                return -errno;
        /* What this file will take, and what the files being written now
         * have reserved but not yet written: the disk must hold all. */
        uint64_t need = MAX(t->disk_reserved, ow_owp_header_size(t->req.n_slots));
        for (size_t i = 0; i < s->n_files; i++) {
                const StoredFile *f = &s->files[i];
                if (f->writer && f->size > f->writer->data.size)
                        need += f->size - f->writer->data.size;
        }
        uint64_t avail = (uint64_t) sv.f_bavail * (uint64_t) sv.f_frsize;
        *ret_free = avail;
        *ret_needed = need;
        return avail >= need ? 0 : -ENOSPC;
}

int datastore_create(TestSession *t) {
        Server *s = t->server;
        size_t size = ow_owp_header_size(t->req.n_slots);
        int fd = -1, r;

        if (!t->class_path)
                return -EINVAL;
        t->data_path = datastore_path(s, t->class_path, &t->sid);
        if (!t->data_path)
                return -ENOMEM;
        if (s->n_files == s->n_files_allocated) {
                size_t k = s->n_files_allocated ? 2 * s->n_files_allocated : 64;
                StoredFile *n = reallocarray(s->files, k, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                s->files = n;
                s->n_files_allocated = k;
        }
        _cleanup_free_ char *class_path = strdup(t->class_path);
        if (!class_path)
                return -ENOMEM;

        /* The class directory may be new, or tmpfiles.d may have removed it
         * as empty just now: create it, and once more if it vanished. */
        for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
                r = mkdir_parents(s->datadir, t->class_path);
                if (r < 0)
                        return r;
                fd = open(t->data_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
                if (fd < 0 && errno != ENOENT)
                        return -errno;
        }
        if (fd < 0)
                return -ENOENT;
        /* Held while the session writes: start-up recovery leaves alone a
         * file that some other process (a second owampd on the same data
         * directory) still holds. Released when the fd closes, by a crash
         * too. */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                r = -errno;
        else
                /* The receiver's opening header (owp-writer.h). */
                r = owp_writer_start_receiver(&t->data, fd, &t->req);
        if (r < 0) {
                (void) unlink(t->data_path);
                safe_close(fd);
                return r;
        }
        s->files[s->n_files++] = (StoredFile){
                .sid = t->sid,
                .class_path = TAKE_PTR(class_path),
                .size = MAX(t->disk_reserved, (uint64_t) size),
                .writer = t,
        };
        t->data_stored = true;
        return 0;
}

void datastore_settle(TestSession *t) {
        Server *s = t->server;
        StoredFile *f;

        if (!t->data_stored || !(f = datastore_find(s, &t->sid)) || f->writer != t)
                return;
        t->data_stored = false;
        f->writer = NULL;
        /* Never ran: there is no data, only a header. */
        bool drop = !t->ran;
        uint64_t size = owp_writer_file_size(&t->data);
        if (!drop && policy_settle_disk(s, t, size) == -EDQUOT)
                drop = true;
        if (drop) {
                if (t->data_path && unlink(t->data_path) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Cannot delete %s: %m", t->data_path);
                datastore_forget(s, &t->sid);
                return;
        }
        f->size = size;
}

int datastore_delete(TestSession *t) {
        (void) owp_writer_close(&t->data);
        if (t->data_stored) {
                t->data_stored = false;
                datastore_forget(t->server, &t->sid);
        }
        if (!t->data_path)
                return 0;
        if (unlink(t->data_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int datastore_append(TestSession *t, const uint8_t *records, size_t n) {
        return owp_writer_append(&t->data, records, n);
}

/* RFC 4656 3.8 / PROTOCOL.md 5.5: drop what Stop-Sessions invalidates,
 * then write the count, the skip ranges and "finished" in the reference's
 * order, so a concurrent reader never mistakes skip ranges for records
 * (owp-writer.h). An invalid session is marked as an error: its data
 * stays for inspection but a whole-session fetch is refused, as with the
 * reference. */
int datastore_finalize(TestSession *t, uint32_t next_seqno, const OwSkipRange *skips, uint32_t n_skips,
                       OwTimestamp stop_time, bool *ret_invalid) {
        OwpFinish f = {
                .next_seqno = MIN(next_seqno, t->req.n_packets),
                .skips = skips,
                .n_skips = n_skips,
                .clean = true,
                .stop_time = stop_time,
                .timeout = t->req.timeout,
                .sync = true,
        };
        return owp_writer_finalize(&t->data, &f, ret_invalid);
}

typedef struct Mapped {
        void *data;
        size_t size;
} Mapped;

static void mapped_done(Mapped *m) {
        if (m->data && m->data != MAP_FAILED)
                munmap(m->data, m->size);
}

/* What ow_owp_recover() does at start-up to a file whose writer died:
 * finished 2 first (from then on every reader counts the records by the
 * size), then the count. */
int datastore_mark_incomplete(TestSession *t) {
        return owp_writer_mark_incomplete(&t->data);
}

/* One file of the index: repaired (1), nothing to do (0), or an error
 * (logged here). */
static int recover_file(Server *s, StoredFile *sf, uint32_t *ret_records) {
        char hex[OW_SID_HEX_SIZE];
        LogFields lf = { .message_id = MSGID_SESSION_FINISHED, .sid = ow_sid_to_hex(&sf->sid, hex) };
        _cleanup_free_ char *path = datastore_path(s, sf->class_path, &sf->sid);
        OwOwpRecovery rec;
        struct stat st;
        int r;

        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0; /* gone meanwhile */
                return log_full(LOG_WARNING, errno, &lf, "Cannot open %s to check it: %m", path);
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK) {
                        log_full(LOG_NOTICE, 0, &lf,
                                 "Data file %s is held by another process (a second owampd on this data "
                                 "directory?); not checked",
                                 path);
                        return 0;
                }
                return log_full(LOG_WARNING, errno, &lf, "Cannot lock %s: %m", path);
        }
        if (fstat(fd, &st) < 0)
                return log_full(LOG_WARNING, errno, &lf, "Cannot stat %s: %m", path);
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return 0;

        Mapped m = { .size = (size_t) st.st_size };
        m.data = mmap(NULL, m.size, PROT_READ, MAP_SHARED, fd, 0);
        if (m.data == MAP_FAILED)
                return log_full(LOG_WARNING, errno, &lf, "Cannot map %s: %m", path);
        r = ow_owp_recover(m.data, m.size, &rec);
        mapped_done(&m);
        if (r < 0) {
                log_full(LOG_WARNING, r, &lf, "Data file %s is damaged and cannot be repaired: %s", path,
                         ow_strerror(r));
                return 0;
        }
        if (r == 0)
                return 0;

        const char *step = NULL;
        r = owp_file_repair(fd, &rec, &step);
        if (r < 0)
                return log_full(LOG_ERR, r, &lf, "Cannot repair %s: %s: %m", path, step);
        /* Synced once for all files, by datastore_recover(): a crash before
         * that leaves a file that is repaired again. */
        sf->size = rec.size;
        *ret_records = rec.n_records;
        log_full(LOG_NOTICE, 0, &lf,
                 "Session %s was left unfinished (owampd ended without closing it): %u records kept%s, marked "
                 "incomplete",
                 hex, rec.n_records, rec.cut > 0 ? ", a partial last record cut" : "");
        return 1;
}

int datastore_recover(Server *s) {
        unsigned repaired = 0;
        uint64_t records = 0;

        for (size_t i = 0; i < s->n_files; i++) {
                uint32_t n = 0;
                if (s->files[i].writer)
                        continue;
                if (recover_file(s, &s->files[i], &n) > 0) {
                        repaired++;
                        records += n;
                }
        }
        if (repaired == 0)
                return 0;
        /* One sync of the file system, not one per file: thousands of
         * files (a crash with as many sessions) would take seconds. */
        _cleanup_close_ int dfd = open(s->datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || syncfs(dfd) < 0)
                log_warning_errno(errno, "Cannot sync the data directory %s after repairs: %m", s->datadir);
        log_notice("Data directory %s: %u unfinished session file%s repaired, %" PRIu64 " records kept",
                   s->datadir, repaired, repaired == 1 ? "" : "s", records);
        return (int) repaired;
}

/*
 * The records of a long fetch answer, produced as the connection sends
 * them (conn.c pulls with datastore_fetch_more()): the session file stays
 * mapped meanwhile, and only a batch of records is encoded at a time.
 * Only for files nobody writes any more (a receive session compacts its
 * records in place when it ends); the others go out at once.
 */
struct FetchStream {
        Mapped m;
        OwOwpFile file;
        uint32_t begin, end;
        uint32_t next; /* the file's next record to look at */
};

#define FETCH_STREAM_BATCH 4096u

FetchStream *datastore_fetch_stream_free(FetchStream *fs) {
        if (!fs)
                return NULL;
        mapped_done(&fs->m);
        free(fs);
        return NULL;
}

/* Up to `max` records of the range, in file order, from fs->next on. */
static uint32_t fetch_stream_take(FetchStream *fs, OwRecord *recs, uint32_t max) {
        uint32_t k = 0;

        for (; fs->next < fs->file.n_records && k < max; fs->next++) {
                OwRecord rec;
                if (ow_owp_get_record(&fs->file, fs->next, &rec) >= 0 && rec.seq >= fs->begin &&
                    rec.seq <= fs->end)
                        recs[k++] = rec;
        }
        return k;
}

int datastore_fetch_more(Conn *c) {
        OwRecord recs[FETCH_STREAM_BATCH];
        FetchStream *fs = c->fetch_stream;
        uint32_t left = ow_engine_fetch_records_left(c->io.engine);
        uint32_t k;
        int r;

        assert(fs);
        k = fetch_stream_take(fs, recs, MIN(left, FETCH_STREAM_BATCH));
        if (k == 0 && left > 0)
                return -EIO; /* fewer records than counted: the file changed under us */
        r = ow_engine_send_fetch_records(c->io.engine, recs, k);
        if (r < 0)
                return r;
        if (ow_engine_fetch_records_left(c->io.engine) == 0)
                c->fetch_stream = datastore_fetch_stream_free(c->fetch_stream);
        return 0;
}

static int fetch_refuse(Conn *c, OwAccept accept) {
        return ow_engine_send_fetch_ack(c->io.engine, &(OwFetchAck){ .accept = accept });
}

/* The session is still being received: its data may still change. */
static bool session_running(Server *s, const OwSid *sid) {
        TestSession *live = server_find_session(s, sid);
        return live && live->state != SESSION_FINISHED;
}

bool datastore_fetch_must_wait(Server *s, const OwFetchSession *f) {
        return f->begin == 0 && f->end == UINT32_MAX && datastore_find(s, &f->sid) &&
               session_running(s, &f->sid);
}

int datastore_fetch(Conn *c, const OwFetchSession *f, uint64_t waited_usec) {
        Server *s = c->server;
        _cleanup_free_ char *path = NULL;
        _cleanup_(mapped_done) Mapped m = {};
        _cleanup_free_ OwSlot *slots = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        char hex[OW_SID_HEX_SIZE];
        OwOwpFile file;
        LogFields lf = { .message_id = MSGID_DATA_FETCHED, .sid = ow_sid_to_hex(&f->sid, hex),
                         .peer = c->peer_addr_str, .mode = ow_mode_to_string(c->mode),
                         .keyid = c->keyid[0] ? c->keyid : NULL };
        bool whole = f->begin == 0 && f->end == UINT32_MAX;
        int r;

        StoredFile *sf = datastore_find(s, &f->sid);
        if (!sf) {
                log_full(LOG_NOTICE, 0, &lf, "Refusing fetch of session %s by %s: no such session", hex,
                         c->peer_str);
                return fetch_refuse(c, OW_ACCEPT_FAILURE);
        }
        path = datastore_path(s, sf->class_path, &f->sid);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                int e = errno;
                log_full(LOG_NOTICE, 0, &lf, "Refusing fetch of session %s by %s: %s", hex, c->peer_str,
                         e == ENOENT ? "its data is gone (removed by age?)" : strerror(e));
                if (e == ENOENT && !sf->writer)
                        datastore_forget(s, &f->sid);
                return fetch_refuse(c, OW_ACCEPT_FAILURE);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        m.size = (size_t) st.st_size;
        if (m.size > 0) {
                m.data = mmap(NULL, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (m.data == MAP_FAILED) {
                        m.data = NULL;
                        return -errno;
                }
        }
        r = m.data ? ow_owp_parse(m.data, m.size, &file) : -OW_ERR_TRUNCATED;
        if (r < 0 || file.version != OW_OWP_VERSION) {
                log_full(LOG_ERR, r, &lf, "Refusing fetch of session %s: its data file is damaged: %s", hex,
                         ow_strerror(r));
                return fetch_refuse(c, OW_ACCEPT_INTERNAL);
        }

        bool running = session_running(s, &f->sid);
        OwOwpFinished fin = file.header.finished;
        if (whole && (running || fin == OW_OWP_FINISHED_ERROR)) {
                /* After a wait (fetch-wait.c) Accept 1, as the reference. */
                char waited[64] = "";
                if (running && waited_usec > 0)
                        (void) snprintf(waited, sizeof(waited), " after %.1f s", (double) waited_usec / 1e6);
                log_full(LOG_NOTICE, 0, &lf, "Refusing whole-session fetch of %s by %s: the session is %s%s",
                         hex, c->peer_str, running ? "still running" : "invalid", waited);
                return fetch_refuse(c, OW_ACCEPT_FAILURE);
        }

        r = ow_owp_get_slots_alloc(&file, &slots);
        if (r < 0)
                return fetch_refuse(c, OW_ACCEPT_INTERNAL);
        file.request.slots = slots;

        /* Records of the range, in file order (PROTOCOL.md 5.7). */
        uint32_t n = 0;
        for (uint32_t i = 0; i < file.n_records; i++) {
                OwRecord rec;
                if (ow_owp_get_record(&file, i, &rec) >= 0 && rec.seq >= f->begin && rec.seq <= f->end)
                        n++;
        }
        bool finished = fin == OW_OWP_FINISHED_NORMAL && !running;
        uint32_t n_skips = finished ? file.header.n_skips : 0;

        size_t req_size, skips_size, recs_size;
        r = ow_request_session_size(file.request.n_slots, &req_size);
        if (r >= 0)
                r = ow_fetch_skips_size(n_skips, &skips_size);
        if (r >= 0)
                r = ow_fetch_records_size(n, &recs_size);
        if (r < 0)
                return fetch_refuse(c, OW_ACCEPT_PERM_RESOURCE);

        /* Everything that could still refuse the fetch comes before the
         * Fetch-Ack: the request must encode, the ranges and records load. */
        out = malloc(req_size);
        if (!out)
                return fetch_refuse(c, OW_ACCEPT_TEMP_RESOURCE);
        r = ow_request_session_encode(&file.request, out, req_size);
        if (r < 0)
                return fetch_refuse(c, OW_ACCEPT_INTERNAL);

        _cleanup_free_ OwSkipRange *sk = n_skips ? calloc(n_skips, sizeof(*sk)) : NULL;
        if (n_skips && !sk)
                return -ENOMEM;
        for (uint32_t i = 0; i < n_skips; i++)
                if (ow_owp_get_skip_range(&file, i, &sk[i]) < 0)
                        return fetch_refuse(c, OW_ACCEPT_INTERNAL);

        _cleanup_free_ FetchStream *fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;

        /* The answer, through the connection's engine, which seals each
         * part with its HMAC: Fetch-Ack, the request, skip ranges, records. */
        OwFetchAck ack = {
                .accept = OW_ACCEPT_OK,
                .finished = finished ? 1 : (fin == OW_OWP_FINISHED_INCOMPLETE || running ? 2 : 0),
                .next_seqno = finished ? file.header.next_seqno : 0,
                .n_skip_ranges = n_skips,
                .n_records = n,
        };
        r = ow_engine_send_fetch_ack(c->io.engine, &ack);
        if (r >= 0)
                r = ow_engine_send_fetch_request(c->io.engine, &file.request);
        if (r >= 0)
                r = ow_engine_send_fetch_skips(c->io.engine, sk, n_skips);
        if (r < 0)
                return r;

        /* The records: pulled by the connection as it sends, from a file
         * nobody writes any more; at once from one still written. */
        *fs = (FetchStream){ .m = TAKE_STRUCT(m), .file = file, .begin = f->begin, .end = f->end };
        fs->file.request.slots = NULL; /* freed here; the stream reads records only */
        assert(!c->fetch_stream);
        c->fetch_stream = TAKE_PTR(fs);
        if (n > 0 && (running || sf->writer))
                while (c->fetch_stream && r >= 0)
                        r = datastore_fetch_more(c);
        else if (n == 0)
                c->fetch_stream = datastore_fetch_stream_free(c->fetch_stream);
        if (r < 0)
                return r;

        log_full(LOG_INFO, 0, &lf, "Session %s fetched by %s: records %u..%u, %u records%s", hex, c->peer_str,
                 f->begin, f->end, n, finished ? "" : " (session not finished)");

        /* delete_on_fetch, by the class the file was stored for (not the
         * fetcher's), once the whole of a finished session went out, as the
         * reference does. What is queued no longer needs the file. */
        if (whole && finished && !sf->writer && policy_delete_on_fetch(s, sf)) {
                _cleanup_free_ char *cls = strdup(sf->class_path);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_full(LOG_WARNING, errno, &lf, "Cannot delete %s: %m", path);
                else {
                        datastore_forget(s, &f->sid);
                        LogFields ld = lf;
                        ld.message_id = MSGID_DATA_DELETED;
                        log_full(LOG_INFO, 0, &ld,
                                 "Deleted session %s after its fetch (delete_on_fetch, class path %s)", hex,
                                 cls ? cls : "?");
                }
        }
        return 0;
}
