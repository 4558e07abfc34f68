/* The /etc/hosts and /etc/resolv.conf an instance gets, and /etc/hosts
 * rewritten in place. The host's resolver files are replaced, in a child's
 * own mount namespace, by files each test writes (root only; skipped
 * otherwise, saying why). */
#include "unit.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common/fs.h"
#include "common/strv.h"
#include "shim/instance.h"

static char tmp[] = "/tmp/berth-etc-XXXXXX";

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHILD_CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* In a child: the host's /etc/resolv.conf (and systemd-resolved's file
 * when `resolved` is not NULL) replaced by the given texts. */
static void fake_host_resolver(const char *resolv, const char *resolved)
{
	CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
	CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/resolv.conf", tmp);
	write_text(path, resolv);
	CHILD_CHECK(mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0);
	/* A tmpfs over /run: the host's /run is never written. */
	CHILD_CHECK(mount("tmpfs", "/run", "tmpfs", 0, NULL) == 0);
	if (resolved) {
		CHILD_CHECK(mkdir("/run/systemd", 0755) == 0);
		CHILD_CHECK(mkdir("/run/systemd/resolve", 0755) == 0);
		write_text("/run/systemd/resolve/resolv.conf", resolved);
	}
}

static char *contents(struct instance_spec *spec, int which)
{
	char *out[3] = {0};
	struct berr err;
	CHILD_CHECK(etc_files_contents(spec, "web", out, &err) == 0);
	for (int i = 0; i < 3; i++)
		if (i != which)
			free(out[i]);
	return out[which];
}

static void joined_network_drops_loopback_name_servers(void *arg)
{
	fake_host_resolver("# host\nnameserver 127.0.0.1\nnameserver 192.0.2.53\n"
			   "search example.net\noptions edns0\n",
			   NULL);
	struct instance_spec spec = {.name = "web", .network = NET_JOIN, .netns = "/ns"};
	char *r = contents(&spec, 2);
	CHILD_CHECK(
	    !strcmp(r, "# host\nnameserver 192.0.2.53\nsearch example.net\noptions edns0\n"));
	free(r);
	/* With the host's network the host's file is the instance's. */
	spec.network = NET_HOST;
	r = contents(&spec, 2);
	CHILD_CHECK(strstr(r, "nameserver 127.0.0.1\n") != NULL);
	free(r);
}

static void joined_network_uses_the_servers_behind_systemd_resolved(void *arg)
{
	fake_host_resolver("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
			   "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch lan\n");
	struct instance_spec spec = {.name = "web", .network = NET_JOIN, .netns = "/ns"};
	char *r = contents(&spec, 2);
	CHILD_CHECK(!strcmp(r, "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch lan\n"));
	free(r);
}

static void joined_network_without_reachable_servers_says_so(void *arg)
{
	fake_host_resolver("nameserver 127.0.0.53\n", NULL);
	struct instance_spec spec = {.name = "web", .network = NET_JOIN, .netns = "/ns"};
	char *r = contents(&spec, 2);
	CHILD_CHECK(strstr(r, "set HostConfig.Dns") != NULL && !strstr(r, "nameserver"));
	free(r);
}

static void given_name_servers_replace_the_hosts(void *arg)
{
	fake_host_resolver("nameserver 192.0.2.53\n", NULL);
	char *dns[] = {"10.0.0.2", "fd00::53", NULL}, *search[] = {"a.lan", "b.lan", NULL},
	     *opts[] = {"ndots:2", NULL};
	struct instance_spec spec = {.name = "web",
				     .network = NET_HOST,
				     .dns = dns,
				     .dns_search = search,
				     .dns_options = opts};
	char *r = contents(&spec, 2);
	CHILD_CHECK(!strcmp(r, "nameserver 10.0.0.2\nnameserver fd00::53\nsearch a.lan b.lan\n"
			       "options ndots:2\n"));
	free(r);
}

/* The gateway's name on the host's network: its entry first, the host's
 * own lines for that name left out, the others kept. */
static void extra_hosts_come_first_and_win(void *arg)
{
	fake_host_resolver("nameserver 192.0.2.53\n", NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/hosts", tmp);
	write_text(path, "127.0.0.1 localhost\n127.0.1.1\tGW.test gw # the host\n"
			 "10.0.0.9 gw.test.other\n\n192.0.2.7 gw.tes\n");
	CHILD_CHECK(mount(path, "/etc/hosts", NULL, MS_BIND, NULL) == 0);
	char *extra[] = {"gw.test:127.66.0.1", "v6:fd00::1", NULL},
	     *lines[] = {"10.1.2.3\thistorian", NULL};
	struct instance_spec spec = {
	    .name = "web", .network = NET_HOST, .extra_hosts = extra, .hosts = lines};
	char *h = contents(&spec, 1);
	CHILD_CHECK(!strcmp(h,
			    "127.66.0.1\tgw.test\nfd00::1\tv6\n127.0.0.1 localhost\n"
			    "10.0.0.9 gw.test.other\n\n192.0.2.7 gw.tes\n10.1.2.3\thistorian\n"));
	free(h);
}

static void run_in_child(void (*fn)(void *))
{
	if (geteuid() != 0) {
		print_message("skipped: replacing the host's resolver files needs root\n");
		return;
	}
	CHILD_OK(fn, NULL);
}

static void resolv_conf_on_a_joined_network(void **state)
{
	run_in_child(joined_network_drops_loopback_name_servers);
	run_in_child(joined_network_uses_the_servers_behind_systemd_resolved);
	run_in_child(joined_network_without_reachable_servers_says_so);
	run_in_child(given_name_servers_replace_the_hosts);
}

static void hosts_of_the_hosts_network_with_extra_hosts(void **state)
{
	run_in_child(extra_hosts_come_first_and_win);
}

static void hosts_get_the_callers_lines(void **state)
{
	char *lines[] = {"10.88.0.5\tweb", "10.88.0.6\tdb", NULL};
	struct instance_spec spec = {
	    .name = "web", .network = NET_JOIN, .netns = "/ns", .hosts = lines};
	char *out[3] = {0};
	struct berr err;
	assert_int_equal(etc_files_contents(&spec, "web", out, &err), 0);
	assert_string_equal(out[0], "web\n");
	assert_string_equal(out[1], "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
				    "ip6-loopback\n10.88.0.5\tweb\n10.88.0.6\tdb\n");
	for (int i = 0; i < 3; i++)
		free(out[i]);
	/* Without a network the host name is on the loopback, lines after it. */
	spec.network = NET_NONE;
	spec.netns = NULL;
	char *extra[] = {"10.1.2.3\thistorian", NULL};
	spec.hosts = extra;
	assert_int_equal(etc_files_contents(&spec, "web", out, &err), 0);
	assert_non_null(strstr(out[1], "127.0.1.1\tweb\n10.1.2.3\thistorian\n"));
	assert_non_null(strstr(out[2], "no name servers"));
	for (int i = 0; i < 3; i++)
		free(out[i]);
}

static void hosts_are_rewritten_in_place(void **state)
{
	assert_non_null(mkdtemp(tmp));
	char dir[128], path[160];
	snprintf(dir, sizeof(dir), "%s/instances/web", tmp);
	struct berr err;
	assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
	snprintf(path, sizeof(path), "%s/hosts", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	char *many[] = {"10.88.0.5\tweb", "10.88.0.6\tdb", "10.88.0.7\tcache", NULL};
	assert_int_equal(shim_hosts_update(tmp, "web", many, &err), 0);
	char *few[] = {"10.88.0.5\tweb", NULL};
	assert_int_equal(shim_hosts_update(tmp, "web", few, &err), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino); /* the file a bind mount holds */
	char *text = NULL;
	size_t len;
	assert_int_equal(fs_read_file(path, 4096, &text, &len, &err), 0);
	assert_string_equal(text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
				  "ip6-loopback\n10.88.0.5\tweb\n");
	free(text);
	assert_int_equal(shim_hosts_update(tmp, "gone", few, &err), -1);
	assert_non_null(strstr(err.msg, "instance gone"));
}

static int teardown(void **state)
{
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hosts_are_rewritten_in_place),
	    cmocka_unit_test(hosts_get_the_callers_lines),
	    cmocka_unit_test(resolv_conf_on_a_joined_network),
	    cmocka_unit_test(hosts_of_the_hosts_network_with_extra_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
