/* Times the cgroup steps of an instance's life on this machine: create
 * (memory, pids and CPU limits, default devices), move a process in, kill
 * everything, remove; and the /proc/<pid>/cgroup lookup the hub makes for
 * every connection. Built and run by bench/cgroup.sh. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim/cgroup.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cgroup_bench CGROUP_ROOT ROUNDS\n");
		return 2;
	}
	const char *root = argv[1];
	int rounds = atoi(argv[2]);
	if (rounds < 1 || rounds > 100000)
		return 2;
	double *t_create = calloc((size_t)rounds, sizeof(double));
	double *t_add = calloc((size_t)rounds, sizeof(double));
	double *t_kill = calloc((size_t)rounds, sizeof(double));
	double *t_destroy = calloc((size_t)rounds, sizeof(double));
	struct berr err;
	enum cgroup_layout layout;
	if (cgroup_detect(root, &layout, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	char name[64];
	snprintf(name, sizeof(name), "bench%d", (int)getpid());
	struct cgroup_limits l = { .memory = 64 << 20, .pids_limit = 100,
				   .cpu_quota_us = 50000, .cpu_period_us = 100000 };
	if (layout == CGROUP_LAYOUT_V2) /* the unified root here has no controllers */
		memset(&l, 0, sizeof(l));
	double lookup_us = 0;
	for (int i = 0; i < rounds; i++) {
		struct cgroup *cg;
		double t0 = now_us();
		if (cgroup_create(root, name, &l, &cg, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		double t1 = now_us();
		pid_t pid = fork();
		if (pid == 0) {
			for (;;)
				pause();
		}
		double t2 = now_us();
		if (cgroup_add_pid(cg, pid, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			kill(pid, SIGKILL);
			return 1;
		}
		double t3 = now_us();
		if (i == 0) {
			char inst[65];
			int n = 10000;
			double a = now_us();
			for (int k = 0; k < n; k++)
				if (cgroup_instance_of_pid(pid, inst, sizeof(inst), &err) != 0)
					return 1;
			lookup_us = (now_us() - a) / n;
		}
		double t4 = now_us();
		if (cgroup_kill_all(cg, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		waitpid(pid, NULL, 0);
		double t5 = now_us();
		if (cgroup_destroy(cg, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		double t6 = now_us();
		cgroup_free(cg);
		t_create[i] = t1 - t0;
		t_add[i] = t3 - t2;
		t_kill[i] = t5 - t4;
		t_destroy[i] = t6 - t5;
	}
	printf("%-8s %-22s create %7.0f us  add_pid %5.0f us  kill_all %6.0f us  destroy %6.0f us"
	       "  instance_of_pid %4.1f us\n",
	       cgroup_layout_name(layout), root, median(t_create, rounds), median(t_add, rounds),
	       median(t_kill, rounds), median(t_destroy, rounds), lookup_us);
	return 0;
}
