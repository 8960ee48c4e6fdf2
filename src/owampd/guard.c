/* SPDX-License-Identifier: Apache-2.0 */

/*
 * Limits against hostile clients on the control port (owampd.conf(5),
 * "LIMITS AGAINST HOSTILE CLIENTS"), by source: one IPv4 address, or the
 * /64 prefix of an IPv6 address (what one host gets to pick its addresses
 * from, RFC 4862).
 *
 *   - connections at once per source (maxcontrolsessionsperaddr), counted
 *     from accept to close; beyond it a connection is closed at once;
 *   - failed authentications per source: the first of each window
 *     (authfailwindow) is logged as it happens, the others as one line per
 *     source and window; maxauthfailures of them in one window start a
 *     back-off (authbackoff, doubling with each repeat) during which the
 *     source is offered no authenticated mode;
 *   - lines that one client can make us write for every connection (the
 *     refusals above, set-up deadlines) are logged LOG_LIMIT_BURST times
 *     per LOG_LIMIT_INTERVAL_USEC, then as one line with the count;
 *   - memory: once a storm of connections is over, malloc_trim() hands the
 *     freed heap back to the system (the Conn, engine and sd-event objects
 *     of thousands of connections are freed in the middle of long-lived
 *     blocks, which keeps glibc from trimming by itself).
 *
 * The sources are a hash table keyed with a secret of our own: an
 * attacker picks its IPv6 prefixes, and must not be able to pick ones
 * that collide. Only sources with connections open or authentication
 * state are kept.
 */

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "random-util.h"
#include "units.h"

#define GUARD_KEY_SIZE 16
#define BUCKETS_MIN 64u
/* Back-offs double up to authbackoff << BACKOFF_MAX_SHIFT. */
#define BACKOFF_MAX_SHIFT 6u
/* How often the summaries and expiries are looked at while there are any. */
#define TICK_USEC USEC_PER_SEC
#define LOG_LIMIT_INTERVAL_USEC (10 * USEC_PER_SEC)
#define LOG_LIMIT_BURST 20u
/* A storm is over when the connections fall to a quarter of their peak
 * (at least TRIM_PEAK_MIN); the heap is trimmed TRIM_DELAY_USEC later. */
#define TRIM_PEAK_MIN 128u
#define TRIM_DELAY_USEC USEC_PER_SEC
/* Sources with authentication state at most; beyond, new failures are
 * still logged (rate-limited) but start no back-off. */
#define AUTH_SOURCES_MAX 65536u

typedef struct GuardSource GuardSource;

struct GuardSource {
        GuardSource *next; /* in its bucket */
        LIST_FIELDS(GuardSource, auth);
        uint8_t key[GUARD_KEY_SIZE];
        char addr[SOCKADDR_STR_MAX]; /* "192.0.2.1", "2001:db8:1:2::/64" */
        uint32_t n_conns;
        bool in_auth_list;

        /* Failed authentications in the current window. */
        uint64_t window_start_usec; /* 0: no window open */
        uint32_t window_failures;
        uint32_t unlogged; /* of them, not logged yet */
        char keyid[OW_KEYID_SIZE + 1];
        bool several_keyids;

        /* Back-off. */
        uint64_t backoff_until_usec; /* 0: none */
        uint64_t forget_usec;        /* n_backoffs goes back to 0 at this time without failures */
        unsigned n_backoffs;
        uint64_t backoff_refused; /* connections offered no authenticated mode in this back-off */
};

typedef struct LogLimit {
        const char *what; /* "connections refused over maxcontrolsessionsperaddr", ... */
        const char *message_id;
        int priority;
        uint64_t begin_usec;
        unsigned logged;
        uint64_t suppressed;
        char last[SOCKADDR_STR_MAX];
} LogLimit;

struct Guard {
        Server *server;
        uint64_t secret[2];
        GuardSource **buckets;
        size_t n_buckets, n_sources, n_auth_sources;
        LIST_HEAD(GuardSource, auth_sources);
        LogLimit limits[_GUARD_LOG_MAX];
        sd_event_source *tick;
        sd_event_source *trim;
        unsigned conns_peak; /* connections at once since the last trim */
};

/* SplitMix64's finalizer over each half, keyed. */
static uint64_t mix64(uint64_t x) {
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}

static size_t key_hash(const Guard *g, const uint8_t key[GUARD_KEY_SIZE]) {
        uint64_t a, b;
        memcpy(&a, key, sizeof(a));
        memcpy(&b, key + sizeof(a), sizeof(b));
        return (size_t) (mix64(a ^ g->secret[0]) ^ mix64(mix64(b ^ g->secret[1]) + a));
}

/* The source of an (unmapped) address: its key and how it is printed. */
static void source_key(const SockAddr *peer, uint8_t key[GUARD_KEY_SIZE], char addr[SOCKADDR_STR_MAX]) {
        memset(key, 0, GUARD_KEY_SIZE);
        if (peer->sa.sa_family == AF_INET) {
                /* As ::ffff:a.b.c.d: never equal to an IPv6 /64's key, whose
                 * low half is zero. */
                key[10] = key[11] = 0xff;
                memcpy(key + 12, &peer->in.sin_addr, 4);
                (void) sockaddr_addr_str(peer, addr, SOCKADDR_STR_MAX);
                return;
        }
        SockAddr prefix = { .in6 = { .sin6_family = AF_INET6 } };
        memcpy(key, &peer->in6.sin6_addr, 8);
        memcpy(&prefix.in6.sin6_addr, key, 8);
        char buf[SOCKADDR_STR_MAX];
        (void) snprintf(addr, SOCKADDR_STR_MAX, "%s/64", sockaddr_addr_str(&prefix, buf, sizeof(buf)));
}

static int buckets_resize(Guard *g, size_t n) {
        GuardSource **b = calloc(n, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_buckets; i++)
                for (GuardSource *src = g->buckets[i], *next; src; src = next) {
                        next = src->next;
                        size_t h = key_hash(g, src->key) & (n - 1);
                        src->next = b[h];
                        b[h] = src;
                }
        free(g->buckets);
        g->buckets = b;
        g->n_buckets = n;
        return 0;
}

static GuardSource *source_find(Guard *g, const uint8_t key[GUARD_KEY_SIZE]) {
        for (GuardSource *src = g->buckets[key_hash(g, key) & (g->n_buckets - 1)]; src; src = src->next)
                if (memcmp(src->key, key, GUARD_KEY_SIZE) == 0)
                        return src;
        return NULL;
}

static GuardSource *source_get(Guard *g, const SockAddr *peer, bool create) {
        uint8_t key[GUARD_KEY_SIZE];
        char addr[SOCKADDR_STR_MAX];

        source_key(peer, key, addr);
        GuardSource *src = source_find(g, key);
        if (src || !create)
                return src;
        if (g->n_sources >= g->n_buckets)
                (void) buckets_resize(g, g->n_buckets * 2); /* on failure, longer chains */
        src = calloc(1, sizeof(*src));
        if (!src)
                return NULL;
        memcpy(src->key, key, sizeof(key));
        memcpy(src->addr, addr, sizeof(addr));
        size_t h = key_hash(g, key) & (g->n_buckets - 1);
        src->next = g->buckets[h];
        g->buckets[h] = src;
        g->n_sources++;
        return src;
}

static bool source_has_auth_state(const GuardSource *src) {
        return src->window_start_usec != 0 || src->backoff_until_usec != 0 || src->n_backoffs != 0;
}

static void auth_untrack(Guard *g, GuardSource *src) {
        if (!src->in_auth_list)
                return;
        LIST_REMOVE(auth, g->auth_sources, src);
        src->in_auth_list = false;
        g->n_auth_sources--;
}

/* Drop src if nothing refers to it any more. */
static void source_release(Guard *g, GuardSource *src) {
        if (src->n_conns > 0 || source_has_auth_state(src))
                return;
        auth_untrack(g, src);
        GuardSource **p = &g->buckets[key_hash(g, src->key) & (g->n_buckets - 1)];
        while (*p != src)
                p = &(*p)->next;
        *p = src->next;
        free(src);
        g->n_sources--;
        /* After a storm, give the table back too. */
        if (g->n_buckets > BUCKETS_MIN && g->n_sources < g->n_buckets / 8)
                (void) buckets_resize(g, g->n_buckets / 2);
}

static void guard_arm_tick(Guard *g) {
        int enabled = SD_EVENT_OFF;
        (void) sd_event_source_get_enabled(g->tick, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_time(g->tick, server_monotonic_usec(g->server) + TICK_USEC);
        (void) sd_event_source_set_enabled(g->tick, SD_EVENT_ONESHOT);
}

/* --- Rate-limited lines ---------------------------------------------------- */

static void log_limit_flush(LogLimit *l, uint64_t now, bool force) {
        if (l->begin_usec == 0 || (!force && now < l->begin_usec + LOG_LIMIT_INTERVAL_USEC))
                return;
        if (l->suppressed > 0)
                log_full(l->priority, 0, &(LogFields){ .message_id = l->message_id },
                         "%" PRIu64 " more %s in the last %" PRIu64 " s (the last from %s)", l->suppressed,
                         l->what, (now - l->begin_usec + USEC_PER_SEC / 2) / USEC_PER_SEC, l->last);
        l->begin_usec = 0;
        l->logged = 0;
        l->suppressed = 0;
}

bool guard_log_allowed(Server *s, GuardLog kind, const char *peer) {
        Guard *g = s->guard;
        assert(g);
        assert(kind >= 0 && kind < _GUARD_LOG_MAX);
        LogLimit *l = &g->limits[kind];
        uint64_t now = server_monotonic_usec(g->server);

        log_limit_flush(l, now, false);
        if (l->begin_usec == 0)
                l->begin_usec = now;
        if (l->logged < LOG_LIMIT_BURST) {
                l->logged++;
                return true;
        }
        l->suppressed++;
        (void) snprintf(l->last, sizeof(l->last), "%s", peer);
        guard_arm_tick(g);
        return false;
}

/* --- Connections ---------------------------------------------------------- */

int guard_conn_admit(Server *s, const SockAddr *peer, const char *peer_str) {
        Guard *g = s->guard;
        assert(g);
        GuardSource *src = source_get(g, peer, true);
        if (!src)
                return -ENOMEM;
        if (s->max_conns_per_addr > 0 && src->n_conns >= s->max_conns_per_addr) {
                if (guard_log_allowed(s, GUARD_LOG_PER_ADDR, peer_str))
                        log_full(LOG_WARNING, 0,
                                 &(LogFields){ .message_id = MSGID_CONNECTION_REFUSED, .peer = src->addr },
                                 "Refusing connection from %s: %u connections from %s already "
                                 "(maxcontrolsessionsperaddr)",
                                 peer_str, src->n_conns, src->addr);
                source_release(g, src);
                return -EUSERS;
        }
        src->n_conns++;
        if (s->n_conns + 1 > g->conns_peak)
                g->conns_peak = s->n_conns + 1;
        return 0;
}

static int on_trim(sd_event_source *es _unused_, uint64_t usec _unused_, void *userdata) {
        Guard *g = userdata;
        /* Give back whole free pages anywhere in the heap, not just at its
         * top (glibc's own trimming only looks there). */
        (void) malloc_trim(0);
        g->conns_peak = g->server->n_conns;
        log_debug("Connections down to %u: heap trimmed", g->server->n_conns);
        return 0;
}

void guard_conn_closed(Server *s, const SockAddr *peer) {
        Guard *g = s->guard;
        if (!g)
                return;
        GuardSource *src = source_get(g, peer, false);
        if (src) {
                assert(src->n_conns > 0);
                src->n_conns--;
                source_release(g, src);
        }
        /* s->n_conns still counts this one. */
        unsigned left = s->n_conns > 0 ? s->n_conns - 1 : 0;
        if (g->conns_peak >= TRIM_PEAK_MIN && left <= g->conns_peak / 4) {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(g->trim, &enabled);
                if (enabled == SD_EVENT_OFF) {
                        (void) sd_event_source_set_time(g->trim,
                                                        server_monotonic_usec(g->server) + TRIM_DELAY_USEC);
                        (void) sd_event_source_set_enabled(g->trim, SD_EVENT_ONESHOT);
                }
        }
}

/* --- Failed authentications ----------------------------------------------- */

static void auth_track(Guard *g, GuardSource *src) {
        if (!src->in_auth_list) {
                LIST_PREPEND(auth, g->auth_sources, src);
                src->in_auth_list = true;
                g->n_auth_sources++;
        }
        guard_arm_tick(g);
}

static void auth_log_summary(Guard *g _unused_, GuardSource *src, uint64_t now) {
        if (src->unlogged == 0)
                return;
        log_full(LOG_NOTICE, 0,
                 &(LogFields){ .message_id = MSGID_AUTH_FAILURES,
                               .peer = src->addr,
                               .keyid = src->keyid[0] ? src->keyid : NULL },
                 "%u failed authentications from %s for key id '%s'%s in the last %" PRIu64 " s",
                 src->window_failures, src->addr, src->keyid, src->several_keyids ? " and others" : "",
                 (now - src->window_start_usec + USEC_PER_SEC / 2) / USEC_PER_SEC);
        src->unlogged = 0;
}

bool guard_auth_failed(Server *s, const SockAddr *peer, const char *keyid) {
        Guard *g = s->guard;
        assert(g);
        uint64_t now = server_monotonic_usec(g->server);
        GuardSource *src = source_get(g, peer, false);

        if (!src || (!src->in_auth_list && g->n_auth_sources >= AUTH_SOURCES_MAX))
                return true; /* not tracked: each is logged */

        if (src->window_start_usec != 0 && now >= src->window_start_usec + s->auth_fail_window_usec) {
                auth_log_summary(g, src, now);
                src->window_start_usec = 0;
        }
        if (src->window_start_usec == 0) {
                src->window_start_usec = now;
                src->window_failures = 0;
                src->unlogged = 0;
                src->several_keyids = false;
        } else if (!streq(src->keyid, keyid))
                src->several_keyids = true;
        (void) snprintf(src->keyid, sizeof(src->keyid), "%s", keyid); /* the last one tried */
        src->window_failures++;
        bool first = src->window_failures == 1;
        if (!first)
                src->unlogged++;
        auth_track(g, src);

        if (s->max_auth_failures > 0 && src->window_failures >= s->max_auth_failures &&
            src->backoff_until_usec == 0) {
                uint64_t len = s->auth_backoff_usec << MIN(src->n_backoffs, BACKOFF_MAX_SHIFT);
                src->backoff_until_usec = now + len;
                /* Doubling again unless it keeps quiet for twice as long
                 * (and a window) after this back-off. */
                src->forget_usec = src->backoff_until_usec + MAX(2 * len, s->auth_fail_window_usec);
                src->n_backoffs++;
                src->backoff_refused = 0;
                log_full(LOG_WARNING, 0,
                         &(LogFields){ .message_id = MSGID_AUTH_FAILURES,
                                       .peer = src->addr,
                                       .keyid = src->keyid[0] ? src->keyid : NULL },
                         "%u failed authentications from %s for key id '%s'%s in the last %" PRIu64
                         " s: offering it no authenticated mode for %" PRIu64 " s (maxauthfailures %u)",
                         src->window_failures, src->addr, src->keyid,
                         src->several_keyids ? " and others" : "",
                         (now - src->window_start_usec + USEC_PER_SEC / 2) / USEC_PER_SEC, len / USEC_PER_SEC,
                         s->max_auth_failures);
                /* That line said it all: a new window starts. */
                src->window_start_usec = 0;
                src->unlogged = 0;
        }
        return first;
}

bool guard_auth_backoff(Server *s, const SockAddr *peer) {
        Guard *g = s->guard;
        assert(g);
        GuardSource *src = source_get(g, peer, false);
        if (!src || src->backoff_until_usec == 0 ||
            server_monotonic_usec(g->server) >= src->backoff_until_usec)
                return false;
        src->backoff_refused++;
        return true;
}

/* --- The tick: summaries and expiries ------------------------------------- */

static int on_tick(sd_event_source *es _unused_, uint64_t usec _unused_, void *userdata) {
        Guard *g = userdata;
        Server *s = g->server;
        uint64_t now = server_monotonic_usec(g->server);
        bool more = false;

        GuardSource *src, *next;
        LIST_FOREACH_SAFE(auth, src, next, g->auth_sources) {
                if (src->window_start_usec != 0 && now >= src->window_start_usec + s->auth_fail_window_usec) {
                        auth_log_summary(g, src, now);
                        src->window_start_usec = 0;
                }
                if (src->backoff_until_usec != 0 && now >= src->backoff_until_usec) {
                        log_full(LOG_NOTICE, 0, &(LogFields){ .message_id = MSGID_AUTH_FAILURES, .peer = src->addr },
                                 "Offering authenticated modes to %s again (%" PRIu64
                                 " connections were offered none meanwhile)",
                                 src->addr, src->backoff_refused);
                        src->backoff_until_usec = 0;
                }
                if (src->n_backoffs > 0 && src->backoff_until_usec == 0 && src->window_start_usec == 0 &&
                    now >= src->forget_usec)
                        src->n_backoffs = 0;
                if (source_has_auth_state(src))
                        more = true;
                else {
                        /* Out of the list; gone unless it has connections. */
                        auth_untrack(g, src);
                        source_release(g, src);
                }
        }
        for (size_t i = 0; i < _GUARD_LOG_MAX; i++) {
                log_limit_flush(&g->limits[i], now, false);
                if (g->limits[i].suppressed > 0)
                        more = true;
        }
        if (more) {
                (void) sd_event_source_set_time(g->tick, now + TICK_USEC);
                (void) sd_event_source_set_enabled(g->tick, SD_EVENT_ONESHOT);
        }
        return 0;
}

/* --- Set-up and tear-down ------------------------------------------------- */

int guard_new(Server *s) {
        Guard *g = calloc(1, sizeof(*g));
        int r;

        if (!g)
                return -ENOMEM;
        g->server = s;
        r = random_bytes(g->secret, sizeof(g->secret));
        if (r >= 0)
                r = buckets_resize(g, BUCKETS_MIN);
        if (r >= 0)
                r = sd_event_add_time(s->event, &g->tick, CLOCK_MONOTONIC, UINT64_MAX, 0, on_tick, g);
        if (r >= 0)
                r = sd_event_add_time(s->event, &g->trim, CLOCK_MONOTONIC, UINT64_MAX, 0, on_trim, g);
        if (r < 0) {
                s->guard = g;
                guard_free(s);
                return r;
        }
        (void) sd_event_source_set_description(g->tick, "guard-tick");
        (void) sd_event_source_set_description(g->trim, "guard-trim");
        (void) sd_event_source_set_enabled(g->tick, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(g->trim, SD_EVENT_OFF);
        g->limits[GUARD_LOG_PER_ADDR] = (LogLimit){
                .what = "connections refused over maxcontrolsessionsperaddr",
                .message_id = MSGID_CONNECTION_REFUSED,
                .priority = LOG_WARNING,
        };
        g->limits[GUARD_LOG_SETUP_TIMEOUT] = (LogLimit){
                .what = "connections closed at setuptimeout",
                .message_id = MSGID_CONNECTION_CLOSED,
                .priority = LOG_NOTICE,
        };
        g->limits[GUARD_LOG_BACKOFF] = (LogLimit){
                .what = "connections refused during an authentication back-off",
                .message_id = MSGID_AUTH_FAILURES,
                .priority = LOG_NOTICE,
        };
        g->limits[GUARD_LOG_SETUP_ERROR] = (LogLimit){
                .what = "connections that failed or went away before the set-up was done",
                .message_id = MSGID_PROTOCOL_ERROR,
                .priority = LOG_WARNING,
        };
        s->guard = g;
        return 0;
}

void guard_free(Server *s) {
        Guard *g = s->guard;
        if (!g)
                return;
        uint64_t now = g->tick ? server_monotonic_usec(g->server) : 0;
        for (size_t i = 0; i < _GUARD_LOG_MAX; i++)
                log_limit_flush(&g->limits[i], now, true);
        for (size_t i = 0; i < g->n_buckets; i++)
                for (GuardSource *src = g->buckets[i], *next; src; src = next) {
                        next = src->next;
                        free(src);
                }
        free(g->buckets);
        sd_event_source_disable_unref(g->tick);
        sd_event_source_disable_unref(g->trim);
        free(g);
        s->guard = NULL;
}
