/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "launch-proto.h"
#include "macro.h"
#include "ow-error.h"

/* Offsets of the fields in a datagram. */
#define OFF_TYPE 0
#define OFF_ROLE 4
#define OFF_SID 8
#define OFF_RUNTIME 40
#define OFF_PRIORITY 48
#define OFF_STATUS 52

bool launch_sid_valid(const char *sid) {
        if (!sid)
                return false;
        for (size_t i = 0; i < LAUNCH_SID_LEN; i++)
                if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'a' && sid[i] <= 'f')))
                        return false;
        return sid[LAUNCH_SID_LEN] == 0;
}

size_t launch_msg_n_fds(LaunchMsgType type) {
        return type == LAUNCH_MSG_START ? 2 : 0;
}

static int validate(const LaunchMsg *m) {
        if (m->type < LAUNCH_MSG_HELLO || m->type >= _LAUNCH_MSG_MAX)
                return -OW_ERR_COMMAND;

        if (m->type == LAUNCH_MSG_HELLO) {
                if (m->sid[0] != 0)
                        return -OW_ERR_PADDING;
        } else if (!launch_sid_valid(m->sid))
                return -OW_ERR_HEX;

        if (m->type == LAUNCH_MSG_START) {
                if (m->role != LAUNCH_ROLE_RECEIVER && m->role != LAUNCH_ROLE_SENDER)
                        return -OW_ERR_RANGE;
                if (m->runtime_max_usec < LAUNCH_RUNTIME_MIN_USEC || m->runtime_max_usec > LAUNCH_RUNTIME_MAX_USEC)
                        return -OW_ERR_RANGE;
                if (m->log_priority < 0 || m->log_priority > 7)
                        return -OW_ERR_RANGE;
        } else if (m->role != 0 || m->runtime_max_usec != 0 || m->log_priority != 0)
                return -OW_ERR_PADDING;

        if (m->type != LAUNCH_MSG_EXITED && m->status != 0)
                return -OW_ERR_PADDING;
        return 0;
}

int launch_msg_encode(const LaunchMsg *m, uint8_t buf[static LAUNCH_MSG_SIZE]) {
        uint32_t u;
        int r = validate(m);
        if (r < 0)
                return -EINVAL;

        memset(buf, 0, LAUNCH_MSG_SIZE);
        u = (uint32_t) m->type;
        memcpy(buf + OFF_TYPE, &u, 4);
        u = (uint32_t) m->role;
        memcpy(buf + OFF_ROLE, &u, 4);
        if (m->type != LAUNCH_MSG_HELLO)
                memcpy(buf + OFF_SID, m->sid, LAUNCH_SID_LEN);
        memcpy(buf + OFF_RUNTIME, &m->runtime_max_usec, 8);
        memcpy(buf + OFF_PRIORITY, &m->log_priority, 4);
        memcpy(buf + OFF_STATUS, &m->status, 4);
        return 0;
}

int launch_msg_decode(const void *buf, size_t len, LaunchMsg *ret) {
        const uint8_t *p = buf;
        LaunchMsg m = {};
        uint32_t u;

        if (len < LAUNCH_MSG_SIZE)
                return -OW_ERR_TRUNCATED;
        if (len > LAUNCH_MSG_SIZE)
                return -OW_ERR_TOO_LONG;

        memcpy(&u, p + OFF_TYPE, 4);
        if (u < LAUNCH_MSG_HELLO || u >= _LAUNCH_MSG_MAX)
                return -OW_ERR_COMMAND;
        m.type = (LaunchMsgType) u;
        memcpy(&u, p + OFF_ROLE, 4);
        if (u > LAUNCH_ROLE_SENDER)
                return m.type == LAUNCH_MSG_START ? -OW_ERR_RANGE : -OW_ERR_PADDING;
        m.role = (LaunchRole) u;
        if (m.type == LAUNCH_MSG_HELLO) {
                for (size_t i = 0; i < LAUNCH_SID_LEN; i++)
                        if (p[OFF_SID + i] != 0)
                                return -OW_ERR_PADDING;
        } else
                memcpy(m.sid, p + OFF_SID, LAUNCH_SID_LEN);
        m.sid[LAUNCH_SID_LEN] = 0;
        memcpy(&m.runtime_max_usec, p + OFF_RUNTIME, 8);
        memcpy(&m.log_priority, p + OFF_PRIORITY, 4);
        memcpy(&m.status, p + OFF_STATUS, 4);

        /* A NUL inside the SID would hide the rest from strlen()-based
         * checks; launch_sid_valid() looks at each of the 32 octets. */
        int r = validate(&m);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int launch_unit_name(const char *sid, char buf[static LAUNCH_UNIT_NAME_MAX]) {
        if (!launch_sid_valid(sid))
                return -EINVAL;
        snprintf(buf, LAUNCH_UNIT_NAME_MAX, "owamp-session-%s.service", sid);
        return 0;
}

int launch_send(int fd, const LaunchMsg *m, const int *fds, size_t n_fds) {
        return launch_send_flags(fd, m, fds, n_fds, 0);
}

int launch_send_flags(int fd, const LaunchMsg *m, const int *fds, size_t n_fds, int flags) {
        uint8_t buf[LAUNCH_MSG_SIZE];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * LAUNCH_MAX_FDS)];
        } control = {};
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds != launch_msg_n_fds(m->type))
                return -EINVAL;
        int r = launch_msg_encode(m, buf);
        if (r < 0)
                return r;
        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        for (;;) {
                ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                return n == (ssize_t) sizeof(buf) ? 0 : -EIO;
        }
}

int launch_recv(int fd, LaunchMsg *ret, int fds[static LAUNCH_MAX_FDS]) {
        uint8_t buf[LAUNCH_MSG_SIZE + 1];
        union {
                struct cmsghdr h;
                /* Room for more than we accept, so that extra fds arrive
                 * (and get closed) instead of truncating silently. */
                uint8_t buf[CMSG_SPACE(sizeof(int) * 16)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        int got[16];
        size_t n_got = 0;
        ssize_t n;

        for (size_t i = 0; i < LAUNCH_MAX_FDS; i++)
                fds[i] = -1;
        do
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int f;
                        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n_got < ELEMENTSOF(got))
                                got[n_got++] = f;
                        else
                                safe_close(f);
                }
        }
        if (n == 0 && n_got == 0)
                return 0;

        LaunchMsg m;
        int r;
        if (mh.msg_flags & MSG_CTRUNC)
                r = -EBADMSG;
        else if (mh.msg_flags & MSG_TRUNC)
                r = -OW_ERR_TOO_LONG;
        else {
                r = launch_msg_decode(buf, (size_t) n, &m);
                if (r >= 0)
                        r = n_got == launch_msg_n_fds(m.type) ? 1 : -EBADMSG;
        }
        for (size_t i = 0; i < n_got; i++) {
                if (r == 1)
                        fds[i] = got[i];
                else
                        safe_close(got[i]);
        }
        if (r == 1)
                *ret = m;
        return r;
}
