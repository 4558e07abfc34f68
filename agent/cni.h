/* Private to agent/: the CNI plugins, run as the Container Network Interface
 * specification says (1.0.0): a network configuration list, one plugin
 * after another, each told CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 * CNI_IFNAME and CNI_PATH in its environment and its configuration (with
 * the previous plugin's result as prevResult) on stdin, answering a result
 * or an error in JSON on stdout. Plugin output is outside input: it is read
 * with a bound, within a time limit, and parsed with bounds
 * (tests/fuzz/fuzz_cni_result.c). */
#ifndef BERTH_AGENT_CNI_H
#define BERTH_AGENT_CNI_H

#include <netinet/in.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CNI_VERSION    "1.0.0"
#define CNI_RESULT_MAX (256 * 1024)
#define CNI_TIMEOUT_MS 60000
/* Where CNI's runtimes look for plugins when told nothing (libcni, podman);
 * Debian's containernetworking-plugins installs into /usr/lib/cni. */
#define CNI_PATH_DEFAULT                                                                           \
	"/usr/local/libexec/cni:/usr/libexec/cni:/usr/local/lib/cni:/usr/lib/cni:/opt/cni/bin"

/* What berth takes from an ADD result. */
struct cni_result {
	char address[INET_ADDRSTRLEN]; /* the instance's IPv4 address */
	unsigned prefix;
	char gateway[INET_ADDRSTRLEN]; /* "" when the result names none */
	char ifname[IF_NAMESIZE];      /* the interface it is on, in the instance */
	char mac[18];		       /* its MAC address, "" when not given */
};

/* Parses a plugin's result (len bytes): the IPv4 address of the interface
 * inside the namespace (the first IPv4 address when no interface says
 * where it is). An error object ({"code", "msg", "details"}) or a result
 * without an IPv4 address fails, err saying why. */
NODISCARD int cni_result_parse(const char *buf, size_t len, struct cni_result *out,
			       struct berr *err);

/* The message of an error object a plugin printed ("msg: details (code
 * N)"), or "" when buf holds none. */
void cni_error_message(const char *buf, size_t len, char *out, size_t cap);

struct cni_call {
	const char *command;	  /* "ADD", "DEL" or "CHECK" */
	const char *container_id; /* [A-Za-z0-9][A-Za-z0-9_.-]* */
	const char *netns;	  /* the pinned namespace; "" for a DEL without one */
	const char *ifname;	  /* the interface inside the namespace */
	const char *path;	  /* directories of the plugins, ':' between */
	const char *skip;	  /* a plugin type not to run, or NULL */
};

/* Runs the configuration list conflist (JSON text) for call->command:
 * ADD runs its plugins in order, each getting the result of the one before
 * as prevResult, and gives the last one's result in *result (malloc'd JSON
 * text); CHECK runs them in order and DEL in reverse order, each with
 * prev_result, the result of the ADD (NULL when there is none). DEL runs
 * every plugin even when one fails, and reports the first failure. */
NODISCARD int cni_run(const struct cni_call *call, const char *conflist, const char *prev_result,
		      char **result, struct berr *err);

/* The plugins of names (NULL-terminated) that none of path's directories
 * holds, space-separated in missing ("" when all are there); and whether
 * `iptables`, which the plugins run, is in PATH. */
void cni_plugins_missing(const char *path, const char *const *names, char *missing, size_t cap,
			 bool *iptables);

/* Runs a program found in the plugins' PATH with args (argv[0] its name),
 * bounded in time and output, as cni_run() runs a plugin; 0 when it exited
 * with status 0. For the firewall rules the plugins leave to the runtime
 * (agent/network.c). */
NODISCARD int cni_run_tool(char *const argv[], struct berr *err);

#endif
