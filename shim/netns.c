/* Network namespaces the daemon equips before an instance starts, and the
 * bridges it removes once their last instance is gone. The privileged steps
 * of module networks are these three and the join in sandbox_start(); the
 * rest (veth pairs, addresses, routes, firewall rules) is the CNI plugins'
 * work (agent/cni.c).
 *
 * A namespace is pinned by bind-mounting its /proc/<pid>/ns/net on a file,
 * as `ip netns add` does: CNI wants a path, the plugins' DEL needs the
 * namespace to find what to undo (the bridge plugin tears down its
 * masquerading rules only for the addresses it finds in there), and a
 * daemon killed with SIGKILL must find the namespace again at its next
 * start, when no process may be left in it. */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "shim/sandbox.h"

int netns_loopback_up(struct berr *err)
{
	cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return berr_set(err, errno, "socket");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return berr_set(err, errno, "get flags of lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return berr_set(err, errno, "bring lo up");
	return 0;
}

/* What the child that makes the namespace reports: the step that failed
 * and its errno. */
struct netns_report {
	int step;
	int code;
};

static const char *const netns_steps[] = {"", "unshare", "bring lo up", "bind-mount"};

static __attribute__((noreturn)) void netns_child(const char *path, int report_fd)
{
	struct netns_report r = {0, 0};
	struct berr e;
	if (unshare(CLONE_NEWNET) < 0)
		r = (struct netns_report){1, errno};
	else if (netns_loopback_up(&e) < 0)
		r = (struct netns_report){2, e.code};
	else if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
		r = (struct netns_report){3, errno};
	ssize_t w = write(report_fd, &r, sizeof(r));
	_exit(w == (ssize_t)sizeof(r) && r.step == 0 ? 0 : 1);
}

int netns_create(const char *path, struct berr *err)
{
	cleanup_close int fd =
	    open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return berr_set(err, errno, "network namespace %s: create the file", path);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berr_set(err, errno, "network namespace %s: pipe", path);
	/* A child takes the new namespace, so the caller's own never changes. */
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		netns_child(path, pipefd[1]);
	}
	int e = errno;
	close(pipefd[1]);
	struct netns_report r = {0, EIO};
	ssize_t n = pid > 0 ? read(pipefd[0], &r, sizeof(r)) : -1;
	close(pipefd[0]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	if (pid < 0 || n != (ssize_t)sizeof(r) || r.step != 0) {
		unlink(path);
		if (pid < 0)
			return berr_set(err, e, "network namespace %s: fork", path);
		const char *step = r.step > 0 && r.step < (int)ARRAY_SIZE(netns_steps)
				       ? netns_steps[r.step]
				       : "make it";
		return berr_set(err, r.code, "network namespace %s: %s", path, step);
	}
	return 0;
}

int netns_remove(const char *path, struct berr *err)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return berr_set(err, errno, "network namespace %s: unmount", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return berr_set(err, errno, "network namespace %s: remove", path);
	return 0;
}

/* RTM_DELLINK for one interface, and the kernel's answer. */
static int link_delete(unsigned index, struct berr *err)
{
	cleanup_close int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return berr_set(err, errno, "netlink socket");
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_DELLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = (int)index;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(s, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return berr_set(err, errno, "netlink send");
	char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t n;
	do
		n = recv(s, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return berr_set(err, errno, "netlink receive");
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return berr_set(err, EPROTO, "netlink: unexpected answer");
	const struct nlmsgerr *ne = NLMSG_DATA(h);
	if (ne->error)
		return berr_set(err, -ne->error, "delete link %u", index);
	return 0;
}

int netns_bridge_delete(const char *name, struct berr *err)
{
	if (!name[0] || strlen(name) >= IFNAMSIZ || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return berr_set(err, EINVAL, "bridge \"%s\": not an interface name", name);
	char path[64];
	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : berr_set(err, errno, "bridge %s: %s", name, path);
	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", name);
	cleanup_closedir DIR *ports = opendir(path);
	if (!ports)
		return berr_set(err, errno == ENOENT ? EINVAL : errno, "%s: not a bridge", name);
	for (struct dirent *de; (de = readdir(ports));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return berr_set(err, EBUSY, "bridge %s: interface %s is still attached",
					name, de->d_name);
	unsigned index = if_nametoindex(name);
	if (!index)
		return errno == ENODEV ? 0 : berr_set(err, errno, "bridge %s", name);
	if (link_delete(index, err) < 0)
		return err->code == ENODEV ? 0 : berr_wrap(err, "bridge %s", name);
	return 1;
}
