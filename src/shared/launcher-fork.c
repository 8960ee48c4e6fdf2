/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
        free(w);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        (void) s;
        (void) usec;
        if (!w->exited)
                (void) kill(w->pid, SIGKILL);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;
        int status;

        (void) s;
        if (si->si_code == CLD_EXITED)
                status = si->si_status;
        else
                status = -si->si_status;
        w->exited = true;
        w->launcher->n_alive--;
        if (w->released) {
                LIST_REMOVE(released, w->launcher->released, w);
                worker_free(w);
                return 0;
        }
        if (w->cb)
                w->cb(w, status, w->userdata);
        return 0;
}

static int fork_start(Launcher *l, const WorkerSpec *spec, int udp_fd, int ctl_fd, WorkerExitHandler cb,
                      void *userdata, Worker **ret) {
        ForkLauncher *fl = (ForkLauncher *) l;
        _cleanup_free_ Worker *w = NULL;
        char prio[16];
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        snprintf(prio, sizeof(prio), "%d", spec->log_max_priority);

        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Child: only fds 0, 1, 2, an empty signal mask, then exec. */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(udp_fd, 3 + 100) < 0 || dup2(ctl_fd, 3 + 101) < 0)
                        _exit(127);
                if (dup2(3 + 100, 0) < 0 || dup2(3 + 101, 1) < 0)
                        _exit(127);
                (void) syscall(SYS_close_range, 3, ~0U, 0);
                setenv("OWAMP_SID", spec->sid_hex ? spec->sid_hex : "", 1);
                setenv("OWAMP_LOG_PRIORITY", prio, 1);
                execl(l->worker_path, "owamp-session", (char *) NULL);
                fprintf(stderr, "owamp-session: exec %s: %s\n", l->worker_path, strerror(errno));
                _exit(127);
        }

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
        if (!w->exited)
                (void) kill(w->pid, SIGKILL);
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
                (void) kill(w->pid, SIGKILL);
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
