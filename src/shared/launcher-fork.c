/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "launcher.h"
#include "list.h"
#include "log.h"
#include "macro.h"

/* How long a released worker may take to end on its own before SIGKILL.
 * It has usually just reported DONE and is on its way out; killing it
 * there gains nothing, and under ASan it would cut LeakSanitizer's exit
 * check short (and leave a zombie that LSan's tracer never lets go of). */
#define RELEASE_GRACE_USEC (5 * UINT64_C(1000000))

/* A worker we killed is looked for with waitid() after this long, then
 * twice as long each time up to REAP_CHECK_MAX_USEC, besides its child
 * event source: sd-event (252 at least) misses the exit of a child that a
 * process other than its parent traced when it died (its pidfd wakes while
 * the tracer holds the zombie, and never again), and LeakSanitizer traces
 * a worker of a sanitizer build while it checks for leaks on its way out:
 * a worker killed then stayed a zombie for good, counted as running
 * (dieby), its session's place taken. */
#define REAP_CHECK_FIRST_USEC (50 * UINT64_C(1000))
#define REAP_CHECK_MAX_USEC (UINT64_C(1000000))

typedef struct ForkLauncher {
        Launcher base;
        unsigned n_alive;
        LIST_HEAD(Worker, released); /* forgotten by their owners, not reaped yet */
} ForkLauncher;

struct Worker {
        ForkLauncher *launcher;
        pid_t pid;
        sd_event_source *child;
        sd_event_source *grace; /* released while running: SIGKILL when it fires */
        sd_event_source *reap;  /* killed: looks for its exit itself (REAP_CHECK_*) */
        uint64_t reap_delay_usec;
        uint64_t kill_at_usec;  /* CLOCK_MONOTONIC */
        WorkerExitHandler cb;
        void *userdata;
        bool exited;
        bool released;
        LIST_FIELDS(Worker, released);
};

static void worker_free(Worker *w) {
        sd_event_source_disable_unref(w->child);
        sd_event_source_disable_unref(w->grace);
        sd_event_source_disable_unref(w->reap);
        free(w);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* It has ended (and is reaped): to its owner, or freed if released. */
static void worker_exited(Worker *w, int status) {
        w->exited = true;
        w->launcher->n_alive--;
        w->child = sd_event_source_disable_unref(w->child);
        w->reap = sd_event_source_disable_unref(w->reap);
        w->grace = sd_event_source_disable_unref(w->grace);
        if (w->released) {
                LIST_REMOVE(released, w->launcher->released, w);
                worker_free(w);
                return;
        }
        if (w->cb)
                w->cb(w, status, w->userdata);
}

static int siginfo_status(const siginfo_t *si) {
        return si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
}

static int on_reap_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;
        siginfo_t si = {};

        int r = waitid(P_PID, w->pid, &si, WEXITED | WNOHANG);
        if (r >= 0 && si.si_pid == w->pid) {
                worker_exited(w, siginfo_status(&si));
                return 0;
        }
        if (r < 0 && errno == ECHILD) {
                /* Reaped already, not by us: gone all the same. */
                worker_exited(w, -SIGKILL);
                return 0;
        }
        w->reap_delay_usec = MIN(w->reap_delay_usec * 2, REAP_CHECK_MAX_USEC);
        (void) sd_event_source_set_time(s, usec + w->reap_delay_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* SIGKILL, and the exit looked for by waitid() too (REAP_CHECK_*). */
static void worker_kill(Worker *w) {
        if (w->exited)
                return;
        (void) kill(w->pid, SIGKILL);
        if (w->reap)
                return;
        w->reap_delay_usec = REAP_CHECK_FIRST_USEC;
        if (sd_event_add_time(w->launcher->base.event, &w->reap, CLOCK_MONOTONIC, now_usec() + w->reap_delay_usec,
                              0, on_reap_check, w) >= 0)
                (void) sd_event_source_set_description(w->reap, "session-worker-reap");
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        (void) s;
        (void) usec;
        worker_kill(w);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        (void) s;
        worker_exited(userdata, siginfo_status(si));
        return 0;
}

/* The worker's environment: ours, with OWAMP_SID and OWAMP_LOG_PRIORITY
 * set to its own (entries of ours by those names left out). The strings
 * are ours or in sid_env/prio_env; only the array is allocated. */
static char **worker_environ(char *sid_env, char *prio_env) {
        size_t n = 0;
        for (char **e = environ; *e; e++)
                n++;
        char **env = calloc(n + 3, sizeof(char *));
        if (!env)
                return NULL;
        size_t k = 0;
        for (char **e = environ; *e; e++)
                if (!startswith(*e, "OWAMP_SID=") && !startswith(*e, "OWAMP_LOG_PRIORITY="))
                        env[k++] = *e;
        env[k++] = sid_env;
        env[k++] = prio_env;
        env[k] = NULL;
        return env;
}

/* posix_spawn(), not fork(): glibc's is a vfork-style clone that shares
 * our memory until the exec, where a fork() copies the page tables of a
 * daemon holding hundreds of sessions (4 ms a worker with 2,000 of them,
 * all that time with the event loop stopped). The child's set-up is the
 * file actions: the test socket to 0 and the channel to 1 (by way of two
 * descriptors above both, so neither is overwritten before it is moved),
 * every other descriptor but 2 closed, an empty signal mask. */
static int fork_start(Launcher *l, const WorkerSpec *spec, int udp_fd, int ctl_fd, WorkerExitHandler cb,
                      void *userdata, Worker **ret) {
        ForkLauncher *fl = (ForkLauncher *) l;
        _cleanup_free_ Worker *w = NULL;
        _cleanup_free_ char **env = NULL;
        char sid_env[64], prio_env[48];
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none;
        pid_t pid;
        int r;

        assert(udp_fd >= 0 && ctl_fd >= 0 && udp_fd != ctl_fd);
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        snprintf(sid_env, sizeof(sid_env), "OWAMP_SID=%s", spec->sid_hex ? spec->sid_hex : "");
        snprintf(prio_env, sizeof(prio_env), "OWAMP_LOG_PRIORITY=%d", spec->log_max_priority);
        env = worker_environ(sid_env, prio_env);
        if (!env)
                return -ENOMEM;

        int high = MAX(MAX(udp_fd, ctl_fd), 2) + 1;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        sigemptyset(&none);
        if ((r = posix_spawn_file_actions_adddup2(&fa, udp_fd, high)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, ctl_fd, high + 1)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, high, 0)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, high + 1, 1)) == 0 &&
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
            (r = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK)) == 0) {
                char *argv[] = { (char *) "owamp-session", NULL };
                /* An exec that fails is reported here (and reaped by glibc). */
                r = posix_spawn(&pid, l->worker_path, &fa, &attr, argv, env);
        }
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;

        w->launcher = fl;
        w->pid = pid;
        w->cb = cb;
        w->userdata = userdata;
        r = sd_event_add_child(l->event, &w->child, pid, WEXITED, on_child, w);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        (void) sd_event_source_set_description(w->child, "session-worker");
        fl->n_alive++;
        *ret = TAKE_PTR(w);
        return 0;
}

static void fork_kill(Worker *w) {
        worker_kill(w);
}

static void fork_release(Worker *w) {
        if (!w)
                return;
        if (w->exited) {
                worker_free(w);
                return;
        }
        /* Still running: give it a moment to end on its own, then kill it;
         * free the record when it is reaped so no zombie is left behind. */
        w->released = true;
        LIST_PREPEND(released, w->launcher->released, w);
        w->kill_at_usec = now_usec() + RELEASE_GRACE_USEC;
        int r = sd_event_add_time(w->launcher->base.event, &w->grace, CLOCK_MONOTONIC, w->kill_at_usec, 0,
                                  on_grace, w);
        if (r >= 0)
                (void) sd_event_source_set_description(w->grace, "session-worker-grace");
        else if (r != -ESTALE) /* -ESTALE: the loop has ended; launcher_free() gives it the grace */
                worker_kill(w);
}

static unsigned fork_count(Launcher *l) {
        return ((ForkLauncher *) l)->n_alive;
}

static void fork_free(Launcher *l) {
        ForkLauncher *fl = (ForkLauncher *) l;

        /* The event loop that would reap the released workers has stopped:
         * reap them here, so neither a zombie nor a Worker (whose child
         * event source keeps the event loop referenced) outlives us. Each
         * still gets the rest of its grace period to end on its own. */
        while (fl->released) {
                Worker *w = fl->released;
                LIST_REMOVE(released, fl->released, w);
                w->child = sd_event_source_disable_unref(w->child);
                w->reap = sd_event_source_disable_unref(w->reap);
                bool reaped = false;
                while (!reaped && now_usec() < w->kill_at_usec) {
                        pid_t k = waitpid(w->pid, NULL, WNOHANG);
                        if (k == w->pid || (k < 0 && errno != EINTR))
                                reaped = true; /* or not ours to reap */
                        else
                                (void) usleep(10000);
                }
                if (!reaped) {
                        (void) kill(w->pid, SIGKILL);
                        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                }
                worker_free(w);
        }
        free(l->worker_path);
        free(l);
}

static const LauncherOps fork_ops = {
        .name = "fork",
        .start = fork_start,
        .kill = fork_kill,
        .release = fork_release,
        .free = fork_free,
        .count = fork_count,
};

int launcher_fork_new(sd_event *e, const char *worker_path, Launcher **ret) {
        ForkLauncher *fl = calloc(1, sizeof(*fl));
        if (!fl)
                return -ENOMEM;
        fl->base.ops = &fork_ops;
        fl->base.event = e;
        fl->base.worker_path = strdup(worker_path);
        if (!fl->base.worker_path) {
                free(fl);
                return -ENOMEM;
        }
        *ret = &fl->base;
        return 0;
}
