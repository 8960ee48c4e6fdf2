/* SPDX-License-Identifier: Apache-2.0 */

/*
 * bench-rusage.so: preloaded into the session workers (LD_PRELOAD) to
 * measure the CPU time of each.
 *
 * It writes "<controller> <user s> <system s> <max RSS KiB>" to
 * $BENCH_RUSAGE_DIR/<controller>.<pid>, <controller> being the name of the
 * process that started the worker (owping or owampd), so the figures can
 * be told apart by role when owping only sends (-t) and owampd only
 * receives. The file is rewritten every 100 ms by a thread of its own and
 * once more at exit: a controller may SIGKILL a worker that is in the
 * middle of exiting after its last message (owping does, when it is done
 * first), and a worker spends its last seconds asleep anyway. Preloading
 * keeps the worker the launcher's own child, as in production.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char path[4096], comm[64] = "unknown";

static void report(void) {
        struct rusage ru;
        char tmp[4200];

        if (!path[0] || getrusage(RUSAGE_SELF, &ru) < 0)
                return;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f, "%s %ld.%06ld %ld.%06ld %ld\n", comm, (long) ru.ru_utime.tv_sec,
                (long) ru.ru_utime.tv_usec, (long) ru.ru_stime.tv_sec, (long) ru.ru_stime.tv_usec,
                ru.ru_maxrss);
        if (fclose(f) == 0)
                (void) rename(tmp, path);
}

static void *reporter(void *arg) {
        (void) arg;
        for (;;) {
                struct timespec ts = { .tv_nsec = 100000000 };
                nanosleep(&ts, NULL);
                report();
        }
        return NULL;
}

__attribute__((constructor)) static void bench_rusage_start(void) {
        const char *dir = getenv("BENCH_RUSAGE_DIR");
        char p[64];
        pthread_t t;

        /* Only in the workers, not in owampd and owping themselves. */
        if (!dir || !strstr(program_invocation_short_name, "owamp-session"))
                return;
        snprintf(p, sizeof(p), "/proc/%d/comm", (int) getppid());
        FILE *f = fopen(p, "re");
        if (f) {
                if (fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = 0;
                fclose(f);
        }
        snprintf(path, sizeof(path), "%s/%s.%d", dir, comm, (int) getpid());
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&t, NULL, reporter, NULL) == 0)
                pthread_detach(t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

__attribute__((destructor)) static void bench_rusage_stop(void) {
        report();
}
