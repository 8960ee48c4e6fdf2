/* SPDX-License-Identifier: Apache-2.0 */

/* What every role of the worker shares: reporting to its controller. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <string.h>

#include "net.h"
#include "ow-crypto.h"
#include "ow-error.h"
#include "session.h"

#define SEND_TTL 255 /* as the reference: the TTL the peer reads shows the hops of the path */

int session_send_out(Session *s) {
        int r = worker_write_all(CTL_FD, &s->out);
        if (r < 0)
                return log_full(LOG_ERR, r, &s->log, "Writing to the controller failed: %m");
        return 0;
}

int session_fail(Session *s, int error, const char *what) {
        log_full(LOG_ERR, error, &s->log, "%s: %s", what, ow_strerror(error));
        s->out.len = 0;
        (void) worker_error_append(&s->out, error, what);
        (void) worker_write_all(CTL_FD, &s->out);
        return error;
}

void session_addresses(Session *s, char *local, size_t local_size, char *peer, size_t peer_size) {
        SockAddr a = {};
        socklen_t len = sizeof(a);

        snprintf(local, local_size, "?");
        if (getsockname(UDP_FD, &a.sa, &len) >= 0) {
                sockaddr_unmap_v4(&a);
                sockaddr_str(&a, local, local_size);
        }
        sockaddr_str(&s->setup.peer, peer, peer_size);
}

void session_log_ready(Session *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_fullv(LOG_INFO, 0, &(LogFields){ .message_id = MSGID_ENDPOINT_READY, .sid = s->log.sid }, fmt,
                  ap);
        va_end(ap);
}

int session_done(Session *s, const WorkerDone *d, const char *fmt, ...) {
        va_list ap;

        int r = worker_done_append(&s->out, d);
        if (r < 0)
                return session_fail(s, r, "Cannot encode DONE");

        va_start(ap, fmt);
        log_fullv(LOG_INFO, 0, &(LogFields){ .message_id = MSGID_ENDPOINT_DONE, .sid = s->log.sid }, fmt,
                  ap);
        va_end(ap);
        return session_send_out(s);
}

int session_codecs(Session *s, const Role *role) {
        OwTestKeys keys;
        memcpy(keys.aes, s->setup.test_aes_key, sizeof(keys.aes));
        memcpy(keys.hmac, s->setup.test_hmac_key, sizeof(keys.hmac));
        int r = ow_testpkt_codec_new_from_keys(s->setup.mode, &keys, &s->codec);
        if (r >= 0 && role->reflects) {
                /* TWAMP's sender packets are OWAMP's; its answers are the
                 * reflected layout of the same security, same keys. */
                OwTestFormat f = { OW_TEST_TWAMP, OW_TEST_REFLECTED,
                                   ow_testpkt_codec_layout(s->codec)->format.security };
                r = ow_testpkt_codec_new_format(&f, &keys, &s->reflected_codec);
        }
        ow_wipe(&keys, sizeof(keys));
        ow_wipe(s->setup.test_aes_key, sizeof(s->setup.test_aes_key));
        ow_wipe(s->setup.test_hmac_key, sizeof(s->setup.test_hmac_key));
        return r;
}

int session_configure_send(Session *s) {
        int ttl = SEND_TTL;
        int tos = ow_typep_dscp(s->setup.type_p) << 2;

        if (s->setup.peer.sa.sa_family == AF_INET) {
                if (setsockopt(UDP_FD, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) < 0)
                        return -errno;
                if (tos && setsockopt(UDP_FD, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) < 0)
                        return -errno;
        } else {
                if (setsockopt(UDP_FD, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) < 0)
                        return -errno;
                if (tos && setsockopt(UDP_FD, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos)) < 0)
                        return -errno;
        }
        return 0;
}
