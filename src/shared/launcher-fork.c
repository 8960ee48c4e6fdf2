/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "launcher.h"
#include "log.h"
#include "macro.h"

typedef struct ForkLauncher {
        Launcher base;
        unsigned n_alive;
} ForkLauncher;

struct Worker {
        ForkLauncher *launcher;
        pid_t pid;
        sd_event_source *child;
        WorkerExitHandler cb;
        void *userdata;
        bool exited;
        bool released;
};

const char *launcher_default_worker_path(void) {
        const char *p = getenv("OWAMP_SESSION_WORKER");
        return !isempty(p) ? p : LIBEXECDIR "/owamp/owamp-session";
}

static void worker_free(Worker *w) {
        sd_event_source_disable_unref(w->child);
        free(w);
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
        /* Still running: kill it, and free the record when it is reaped so
         * no zombie is left behind. */
        w->released = true;
        (void) kill(w->pid, SIGKILL);
}

static unsigned fork_count(Launcher *l) {
        return ((ForkLauncher *) l)->n_alive;
}

static void fork_free(Launcher *l) {
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
