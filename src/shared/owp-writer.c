/* SPDX-License-Identifier: Apache-2.0 */

/*
 * The .owp writer (owp-writer.h): the octets come from the core
 * (ow-owp.h); this file puts them in a file, at the offsets and in the
 * order the core gives.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "owp-writer.h"

/* Encoded records per write when writing decoded ones: one write per
 * record would be slow. */
#define OWP_WRITE_CHUNK_RECORDS 512

/* All of buf at offset off, or at the file's offset when off is
 * OFFSET_CURRENT. */
#define OFFSET_CURRENT UINT64_MAX

static int write_at(int fd, const void *buf, size_t len, uint64_t off) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = off == OFFSET_CURRENT ? write(fd, p, len) : pwrite(fd, p, len, (off_t) off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
                if (off != OFFSET_CURRENT)
                        off += (uint64_t) n;
        }
        return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
        return write_at(fd, buf, len, off);
}

static int write_all(int fd, const void *buf, size_t len) {
        return write_at(fd, buf, len, OFFSET_CURRENT);
}

static int apply_patches(int fd, const OwOwpPatch *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int r = pwrite_all(fd, p[i].bytes, p[i].len, p[i].offset);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Header h for req, encoded into a new buffer of *ret_size octets. */
static int header_encode(const OwOwpHeader *h, const OwSessionRequest *req, uint8_t **ret, size_t *ret_size) {
        size_t size = ow_owp_header_size(req->n_slots);
        _cleanup_free_ uint8_t *hdr = malloc(size);
        int r;

        if (!hdr)
                return -ENOMEM;
        r = ow_owp_header_encode(h, req, hdr, size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(hdr);
        *ret_size = size;
        return 0;
}

int owp_writer_start_receiver(OwpWriter *w, int fd, const OwSessionRequest *req) {
        _cleanup_free_ uint8_t *hdr = NULL;
        OwOwpHeader h;
        size_t size;
        int r;

        assert(w);
        ow_owp_header_init_receiver(req->n_slots, &h);
        r = header_encode(&h, req, &hdr, &size);
        if (r < 0)
                return r;
        r = pwrite_all(fd, hdr, size, 0);
        if (r < 0)
                return r;
        *w = (OwpWriter) { .fd = fd, .header = h, .size = size };
        return 0;
}

int owp_writer_append(OwpWriter *w, const uint8_t *records, size_t n) {
        if (w->fd < 0)
                return -EBADF;
        if (n > UINT32_MAX - w->n_records)
                return -EFBIG;
        uint64_t off = ow_owp_header_records_end(&w->header) + (uint64_t) w->n_records * OW_RECORD_SIZE;
        int r = pwrite_all(w->fd, records, n * OW_RECORD_SIZE, off);
        if (r < 0)
                return r;
        w->n_records += (uint32_t) n;
        w->size += n * OW_RECORD_SIZE;
        return 0;
}

int owp_writer_append_records(OwpWriter *w, const OwRecord *records, size_t n) {
        uint8_t chunk[OW_RECORD_SIZE * OWP_WRITE_CHUNK_RECORDS];

        for (size_t done = 0; done < n;) {
                size_t k = MIN(n - done, (size_t) OWP_WRITE_CHUNK_RECORDS);
                for (size_t i = 0; i < k; i++)
                        ow_record_encode(&records[done + i], chunk + i * OW_RECORD_SIZE);
                int r = owp_writer_append(w, chunk, k);
                if (r < 0)
                        return r;
                done += k;
        }
        return 0;
}

/* The records back from the file, cleaned in memory; what is kept is
 * written back and the file cut after it. */
static int writer_clean(OwpWriter *w, const OwpFinish *f, bool *ret_invalid) {
        uint64_t start = ow_owp_header_records_end(&w->header);
        size_t len = (size_t) w->n_records * OW_RECORD_SIZE;
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t kept;
        int r;

        *ret_invalid = false;
        if (len == 0)
                return 0;
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        ssize_t n = pread(w->fd, buf, len, (off_t) start);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -EIO;
        r = ow_owp_records_clean(buf, w->n_records, f->next_seqno, f->stop_time, f->timeout, &kept);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret_invalid = true;
                return 0;
        }
        if (kept == w->n_records)
                return 0;
        r = pwrite_all(w->fd, buf, (size_t) kept * OW_RECORD_SIZE, start);
        if (r < 0)
                return r;
        if (ftruncate(w->fd, (off_t) (start + (uint64_t) kept * OW_RECORD_SIZE)) < 0)
                return -errno;
        w->size -= (uint64_t) (w->n_records - kept) * OW_RECORD_SIZE;
        w->n_records = kept;
        return 0;
}

int owp_writer_finalize(OwpWriter *w, const OwpFinish *f, bool *ret_invalid) {
        OwOwpPatch p[OW_OWP_FINISH_PATCHES];
        bool invalid = false;
        int r;

        if (w->fd < 0)
                return -EBADF;
        if (f->clean) {
                r = writer_clean(w, f, &invalid);
                if (r < 0)
                        return r;
        }
        if (invalid) {
                /* The data stays for inspection but a whole-session fetch
                 * is refused, as with the reference. The count and the
                 * (empty) skip ranges are written too, so that start-up
                 * recovery (ow_owp_recover()) tells this file from one whose
                 * writer died, even with a Next Seqno of 0. */
                r = ow_owp_header_finish(&w->header, w->n_records, 0, OW_OWP_FINISHED_ERROR, f->next_seqno, p);
                if (r >= 0)
                        r = apply_patches(w->fd, p, ELEMENTSOF(p));
                *ret_invalid = true;
                return r;
        }

        OwOwpHeader h = w->header;
        r = ow_owp_header_finish(&h, w->n_records, f->n_skips, OW_OWP_FINISHED_NORMAL, f->next_seqno, p);
        if (r < 0)
                return r;
        /* Step 1, the count; then the skip ranges after the records. */
        r = apply_patches(w->fd, &p[0], 1);
        if (r < 0)
                return r;
        if (f->n_skips > 0) {
                size_t len = (size_t) f->n_skips * OW_SKIP_RANGE_SIZE;
                _cleanup_free_ uint8_t *sk = malloc(len);
                if (!sk)
                        return -ENOMEM;
                for (uint32_t i = 0; i < f->n_skips; i++)
                        ow_skip_range_encode(&f->skips[i], sk + (size_t) i * OW_SKIP_RANGE_SIZE);
                r = pwrite_all(w->fd, sk, len, h.skips_offset);
                if (r < 0)
                        return r;
                w->size += len;
        }
        w->header = h;
        /* Steps 3 and 4: the skip count and offset, finished last. */
        r = apply_patches(w->fd, &p[1], ELEMENTSOF(p) - 1);
        if (r >= 0 && f->sync && fdatasync(w->fd) < 0)
                r = -errno;
        if (r >= 0)
                *ret_invalid = false;
        return r;
}

int owp_writer_mark_incomplete(OwpWriter *w) {
        OwOwpPatch p[OW_OWP_INCOMPLETE_PATCHES];
        int r;

        if (w->fd < 0)
                return -EBADF;
        r = ow_owp_header_mark_incomplete(&w->header, w->n_records, p);
        if (r < 0)
                return r;
        return apply_patches(w->fd, p, ELEMENTSOF(p));
}

uint64_t owp_writer_file_size(const OwpWriter *w) {
        struct stat st;

        if (w->fd >= 0 && fstat(w->fd, &st) >= 0)
                return (uint64_t) st.st_size;
        return w->size;
}

int owp_writer_close(OwpWriter *w) {
        int r = 0;

        if (w->fd >= 0 && close(w->fd) < 0)
                r = -errno;
        w->fd = -1;
        if (w->temp_path)
                (void) unlink(w->temp_path);
        free(w->temp_path);
        free(w->path);
        w->temp_path = w->path = NULL;
        return r;
}

int owp_writer_create_temp(OwpWriter *w, const char *path, mode_t mode, const OwSessionRequest *req) {
        _cleanup_free_ char *temp = NULL, *final = strdup(path);
        int fd, r;

        if (!final || asprintf(&temp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(temp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fd, mode & ~mask) < 0)
                r = -errno;
        else
                r = owp_writer_start_receiver(w, fd, req);
        if (r < 0) {
                (void) unlink(temp);
                safe_close(fd);
                return r;
        }
        w->temp_path = TAKE_PTR(temp);
        w->path = TAKE_PTR(final);
        return 0;
}

int owp_writer_commit(OwpWriter *w) {
        if (w->fd < 0 || !w->temp_path)
                return -EBADF;
        if (fsync(w->fd) < 0)
                return -errno;
        if (rename(w->temp_path, w->path) < 0)
                return -errno;
        free(w->temp_path);
        w->temp_path = NULL; /* renamed: not to be removed */
        return owp_writer_close(w);
}

int owp_write_fetched(int fd, const OwSessionRequest *req, const OwFetchAck *ack, const OwSkipRange *skips,
                      const OwRecord *records) {
        uint8_t chunk[OW_RECORD_SIZE * OWP_WRITE_CHUNK_RECORDS];
        _cleanup_free_ uint8_t *hdr = NULL;
        OwOwpHeader h;
        size_t size, used = 0;
        int r;

        ow_owp_header_init_fetched(req->n_slots, ack->finished, ack->next_seqno, ack->n_skip_ranges,
                                   ack->n_records, &h);
        r = header_encode(&h, req, &hdr, &size);
        if (r < 0)
                return r;
        r = write_all(fd, hdr, size);
        for (uint32_t i = 0; r >= 0 && i < ack->n_skip_ranges; i++) {
                ow_skip_range_encode(&skips[i], chunk + used);
                used += OW_SKIP_RANGE_SIZE;
                if (used + OW_SKIP_RANGE_SIZE > sizeof(chunk)) {
                        r = write_all(fd, chunk, used);
                        used = 0;
                }
        }
        if (r >= 0 && used > 0)
                r = write_all(fd, chunk, used);
        used = 0;
        for (uint32_t i = 0; r >= 0 && i < ack->n_records; i++) {
                ow_record_encode(&records[i], chunk + used);
                used += OW_RECORD_SIZE;
                if (used == sizeof(chunk)) {
                        r = write_all(fd, chunk, used);
                        used = 0;
                }
        }
        if (r >= 0 && used > 0)
                r = write_all(fd, chunk, used);
        return r;
}

int owp_file_repair(int fd, const OwOwpRecovery *rec, const char **ret_step) {
        int r;

        if (rec->cut > 0 && ftruncate(fd, (off_t) rec->size) < 0) {
                *ret_step = "cutting its partial record";
                return -errno;
        }
        r = apply_patches(fd, rec->patches, ELEMENTSOF(rec->patches));
        if (r < 0)
                *ret_step = "writing its header";
        return r;
}
