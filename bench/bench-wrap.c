/* SPDX-License-Identifier: Apache-2.0 */

/*
 * bench-wrap: stands in for owamp-session ($OWAMP_SESSION_WORKER) to
 * measure the CPU time of each session worker.
 *
 * Runs $BENCH_WORKER with the same file descriptors, waits for it and
 * appends "<controller> <user seconds> <system seconds> <max RSS KiB>" to
 * $BENCH_RUSAGE_DIR/<controller>.<pid>, where <controller> is the name of
 * the process that started us (owping or owampd), so the figures can be
 * told apart by role when owping only sends (-t) and owampd only
 * receives. Exits as the worker did.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
        const char *worker = getenv("BENCH_WORKER");
        const char *dir = getenv("BENCH_RUSAGE_DIR");
        char comm[64] = "unknown", path[4096];

        (void) argc;
        if (!worker || !dir) {
                fprintf(stderr, "bench-wrap: BENCH_WORKER and BENCH_RUSAGE_DIR must be set\n");
                return 127;
        }
        snprintf(path, sizeof(path), "/proc/%d/comm", (int) getppid());
        FILE *f = fopen(path, "re");
        if (f) {
                if (fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = 0;
                fclose(f);
        }

        pid_t pid = fork();
        if (pid < 0)
                return 127;
        if (pid == 0) {
                execv(worker, argv);
                fprintf(stderr, "bench-wrap: exec %s: %s\n", worker, strerror(errno));
                _exit(127);
        }
        /* The controller must see the worker's end of the channel close when
         * the worker exits: drop our copies of fds 0 and 1. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                close(null);
        }

        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        return 127;

        snprintf(path, sizeof(path), "%s/%s.%d", dir, comm, (int) pid);
        f = fopen(path, "we");
        if (f) {
                fprintf(f, "%s %ld.%06ld %ld.%06ld %ld\n", comm, (long) ru.ru_utime.tv_sec,
                        (long) ru.ru_utime.tv_usec, (long) ru.ru_stime.tv_sec, (long) ru.ru_stime.tv_usec,
                        ru.ru_maxrss);
                fclose(f);
        }
        if (WIFSIGNALED(status)) {
                signal(WTERMSIG(status), SIG_DFL);
                raise(WTERMSIG(status));
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}
