/* Network changes from the kernel (rtnetlink): a new address or a new
 * default route usually means the link came back (a cable, Wi-Fi, a modem,
 * DHCP), and connections waiting out their backoff should try at once.
 * Messages are read as the kernel's, but with every length checked. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/upstream_conn.h"

#define NETWATCH_BUF 16384

int netwatch_parse(const void *buf, size_t len, char *what, size_t cap)
{
	const unsigned char *p = buf;
	int found = 0;
	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len)
			return -1;
		size_t body = h.nlmsg_len - sizeof(h);
		const unsigned char *payload = p + NLMSG_HDRLEN;
		if (h.nlmsg_type == RTM_NEWADDR && body >= sizeof(struct ifaddrmsg)) {
			struct ifaddrmsg ifa;
			memcpy(&ifa, payload, sizeof(ifa));
			/* Host-scope (127.0.0.1) and link-local addresses reach
			 * nothing upstream. */
			if (ifa.ifa_scope != RT_SCOPE_HOST && ifa.ifa_scope != RT_SCOPE_LINK) {
				snprintf(what, cap, "new IPv%d address on interface %u",
					 ifa.ifa_family == AF_INET6 ? 6 : 4, ifa.ifa_index);
				found = 1;
			}
		} else if (h.nlmsg_type == RTM_NEWROUTE && body >= sizeof(struct rtmsg)) {
			struct rtmsg rt;
			memcpy(&rt, payload, sizeof(rt));
			if (rt.rtm_dst_len == 0 && rt.rtm_type == RTN_UNICAST &&
			    rt.rtm_table != RT_TABLE_LOCAL) {
				snprintf(what, cap, "new IPv%d default route",
					 rt.rtm_family == AF_INET6 ? 6 : 4);
				found = 1;
			}
		} else if (h.nlmsg_type == NLMSG_ERROR && body < sizeof(struct nlmsgerr)) {
			return -1;
		}
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return found;
}

static void on_netlink(struct hub_io *io, uint32_t events)
{
	struct upstream *up = (struct upstream *)((char *)io - offsetof(struct upstream, netwatch));
	if (io->fd < 0)
		return;
	char what[128] = "";
	bool changed = false;
	static unsigned char buf[NETWATCH_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		struct sockaddr_nl from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(io->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* Events were lost: something changed, assume the best. */
			snprintf(what, sizeof(what), "kernel events overflowed");
			changed = true;
			continue;
		}
		if (n <= 0)
			break;
		if (flen != sizeof(from) || from.nl_pid != 0)
			continue; /* only the kernel's word counts */
		if (netwatch_parse(buf, (size_t)n, what, sizeof(what)) > 0)
			changed = true;
	}
	if (changed)
		upstream_network_changed(up, what);
}

int netwatch_open(struct upstream *up, struct berr *err)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd < 0)
		return berr_set(err, errno, "netlink socket");
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
					      RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return berr_set(err, e, "netlink bind");
	}
	up->netwatch.fd = fd;
	up->netwatch.on_event = on_netlink;
	if (broker_watch(up->b, &up->netwatch, EPOLLIN, err) < 0) {
		close(fd);
		up->netwatch.fd = -1;
		return -1;
	}
	return 0;
}

void netwatch_close(struct upstream *up)
{
	if (up->netwatch.fd < 0)
		return;
	broker_unwatch(up->b, &up->netwatch);
	close(up->netwatch.fd);
	up->netwatch.fd = -1;
}
