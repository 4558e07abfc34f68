/* The edge CA and what it issues, checked with the openssl command line
 * (an implementation other than the one that made them); its renewal at
 * 80% of its life; the workload API's encryption. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/edgeca.h"
#include "agent/workload.h"
#include "common/cleanup.h"
#include "common/fs.h"

#define T0  1700000000LL
#define DAY (24 * 3600LL)

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/berth-edgeca-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	struct berr err;
	assert_int_equal(fs_remove_tree(dir, &err), 0);
	return 0;
}

/* The output of a shell command, which must succeed. */
static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[65536];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	if (st != 0)
		fail_msg("%s failed (%d): %s", cmd, st, out);
	return out;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void quickstart_ca_is_an_ec_ca_valid_90_days(void **state)
{
	struct berr err;
	int64_t now = time(NULL);
	assert_int_equal(edgeca_create(dir, "Hannover01", now, &err), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/edge-ca.pem -noout -text", dir);
	const char *text = run(cmd);
	assert_non_null(strstr(text, "CA:TRUE, pathlen:0"));
	assert_non_null(strstr(text, "Certificate Sign"));
	assert_non_null(strstr(text, "prime256v1"));
	assert_non_null(strstr(text, "CN = berth edge CA Hannover01"));
	struct stat st;
	char path[512];
	snprintf(path, sizeof(path), "%s/edge-ca.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	struct edgeca *ca = NULL;
	char cert[512];
	snprintf(cert, sizeof(cert), "%s/edge-ca.pem", dir);
	assert_int_equal(edgeca_load(cert, path, &ca, &err), 0);
	assert_true(ca->not_after - ca->not_before >= 90 * DAY);
	assert_true(ca->not_after <= now + 90 * DAY);
	edgeca_free(ca);
}

static void server_certificates_verify_with_the_ca_and_carry_the_names(void **state)
{
	struct berr err;
	int64_t now = time(NULL);
	assert_int_equal(edgeca_create(dir, "d1", now, &err), 0);
	char cert[512], key[512];
	snprintf(cert, sizeof(cert), "%s/edge-ca.pem", dir);
	snprintf(key, sizeof(key), "%s/edge-ca.key", dir);
	struct edgeca *ca = NULL;
	assert_int_equal(edgeca_load(cert, key, &ca, &err), 0);
	const char *sans[] = {"gw.example.test", "10.1.2.3", "gw.example.test", "web"};
	char *chain = NULL, *kp = NULL;
	int64_t na = 0;
	assert_int_equal(edgeca_issue_server(ca, "gw.example.test", sans, 4, now, now + 30 * DAY,
					     &chain, &kp, &na, &err),
			 0);
	assert_int_equal(na, now + 30 * DAY);
	char leaf[512], keyf[512], cmd[2048];
	snprintf(leaf, sizeof(leaf), "%s/leaf.pem", dir);
	snprintf(keyf, sizeof(keyf), "%s/leaf.key", dir);
	write_text(leaf, chain);
	write_text(keyf, kp);
	/* The chain: the leaf, then the CA. */
	snprintf(cmd, sizeof(cmd), "grep -c 'BEGIN CERTIFICATE' %s", leaf);
	assert_string_equal(run(cmd), "2\n");
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s %s", cert, leaf);
	run(cmd);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -text", leaf);
	const char *text = run(cmd);
	assert_non_null(strstr(text, "DNS:gw.example.test, IP Address:10.1.2.3, DNS:web"));
	assert_non_null(strstr(text, "TLS Web Server Authentication"));
	assert_non_null(strstr(text, "CA:FALSE"));
	assert_non_null(strstr(text, "Subject: CN = gw.example.test"));
	snprintf(cmd, sizeof(cmd),
		 "test \"$(openssl x509 -in %s -noout -pubkey)\" = "
		 "\"$(openssl pkey -in %s -pubout)\"",
		 leaf, keyf);
	run(cmd);
	free(chain);
	free(kp);
	/* Never beyond the CA's own end. */
	assert_int_equal(
	    edgeca_issue_server(ca, "x", sans, 1, now, now + 1000 * DAY, &chain, &kp, &na, &err),
	    0);
	assert_int_equal(na, ca->not_after);
	free(chain);
	free(kp);
	edgeca_free(ca);
}

static void a_ca_must_be_a_ca_and_match_its_key(void **state)
{
	struct berr err;
	char cmd[2048], cert[512], key[512], other[512];
	snprintf(cert, sizeof(cert), "%s/leaf.pem", dir);
	snprintf(key, sizeof(key), "%s/leaf.key", dir);
	snprintf(other, sizeof(other), "%s/other.key", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
		 "-out %s -subj /CN=leaf -days 2 -addext basicConstraints=critical,CA:FALSE "
		 "2>&1 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s",
		 key, cert, other);
	run(cmd);
	struct edgeca *ca = NULL;
	assert_int_equal(edgeca_load(cert, key, &ca, &err), -1);
	assert_non_null(strstr(err.msg, "is not a CA certificate"));
	assert_int_equal(edgeca_load(cert, other, &ca, &err), -1);
	assert_non_null(strstr(err.msg, "does not match"));
	/* The positive control: an operator's CA made with openssl loads. */
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -subj /CN=ops "
		 "-days 30 -addext basicConstraints=critical,CA:TRUE 2>&1",
		 key, cert);
	run(cmd);
	assert_int_equal(edgeca_load(cert, key, &ca, &err), 0);
	edgeca_free(ca);
}

static struct daemon *daemon_at(const char *root, struct agent_config *cfg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->cfg = cfg;
	snprintf(d->root, sizeof(d->root), "%s", root);
	snprintf(d->run, sizeof(d->run), "%s/run", root);
	return d;
}

static char *file_text(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	struct berr err;
	assert_int_equal(fs_read_file(path, 1 << 20, &data, &len, &err), 0);
	return data;
}

static void the_quickstart_ca_renews_at_80_percent_and_the_gateway_follows(void **state)
{
	struct agent_config cfg = {.device_id = "d1",
				   .hub_enabled = true,
				   .gateway_enabled = true,
				   .gateway_hostname = "gw.example.test"};
	struct daemon *d = daemon_at(dir, &cfg);
	struct berr err;
	char ca[512], gw[512];
	snprintf(ca, sizeof(ca), "%s/ca/edge-ca.pem", dir);
	snprintf(gw, sizeof(gw), "%s/ca/gateway.pem", dir);
	bool renewed, changed;
	assert_int_equal(edge_check(d, T0, &renewed, &changed, &err), 0);
	assert_false(renewed); /* the first CA replaces none */
	assert_true(changed);
	char *ca1 = file_text(ca), *gw1 = file_text(gw);
	/* 71 days on: nothing is due. */
	assert_int_equal(edge_check(d, T0 + 71 * DAY, &renewed, &changed, &err), 0);
	assert_false(renewed || changed);
	char *ca2 = file_text(ca), *gw2 = file_text(gw);
	assert_string_equal(ca1, ca2);
	assert_string_equal(gw1, gw2);
	/* 73 days on (past 72, 80% of 90): a new CA, and a gateway
	 * certificate from it. */
	assert_int_equal(edge_check(d, T0 + 73 * DAY, &renewed, &changed, &err), 0);
	assert_true(renewed && changed);
	char *ca3 = file_text(ca), *gw3 = file_text(gw);
	assert_string_not_equal(ca1, ca3);
	assert_string_not_equal(gw1, gw3);
	assert_int_equal(d->edge.ca_not_before, T0 + 73 * DAY - 300);
	assert_true(strstr(gw3, ca3) != NULL); /* the chain holds the new CA */
	/* Another gateway name: a new certificate, the same CA. */
	cfg.gateway_hostname = "other.example.test";
	assert_int_equal(edge_check(d, T0 + 74 * DAY, &renewed, &changed, &err), 0);
	assert_true(!renewed && changed);
	char *ca4 = file_text(ca), *gw4 = file_text(gw);
	assert_string_equal(ca3, ca4);
	assert_string_not_equal(gw3, gw4);
	free_many(ca1, gw1, ca2, gw2, ca3, gw3, ca4, gw4);
	free(d);
}

static void an_operators_ca_is_used_and_never_replaced(void **state)
{
	char cmd[2048], cert[512], key[512];
	snprintf(cert, sizeof(cert), "%s/ops.pem", dir);
	snprintf(key, sizeof(key), "%s/ops.key", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
		 "-out %s -subj /CN=ops -days 30 -addext basicConstraints=critical,CA:TRUE 2>&1",
		 key, cert);
	run(cmd);
	struct agent_config cfg = {.device_id = "d1",
				   .hub_enabled = true,
				   .gateway_enabled = true,
				   .gateway_hostname = "gw.example.test",
				   .edge_ca_cert = cert,
				   .edge_ca_key = key};
	struct daemon *d = daemon_at(dir, &cfg);
	struct berr err;
	char *before = file_text(cert);
	int64_t late = time(NULL) + 29 * DAY;
	bool renewed, changed;
	assert_int_equal(edge_check(d, late, &renewed, &changed, &err), 0);
	assert_false(renewed);
	char *after = file_text(cert);
	assert_string_equal(before, after);
	char gw[512];
	snprintf(gw, sizeof(gw), "%s/ca/gateway.pem", dir);
	snprintf(cmd, sizeof(cmd), "openssl verify -attime %lld -CAfile %s %s",
		 (long long)late + 60, cert, gw);
	run(cmd);
	snprintf(cmd, sizeof(cmd), "test ! -e %s/ca/edge-ca.pem", dir);
	run(cmd);
	free_many(before, after);
	free(d);
}

static void encryption_round_trips_per_module_and_refuses_tampering(void **state)
{
	unsigned char secret[WORKLOAD_SECRET_LEN], again[WORKLOAD_SECRET_LEN];
	struct berr err;
	assert_int_equal(workload_secret(dir, secret, &err), 0);
	assert_int_equal(workload_secret(dir, again, &err), 0);
	assert_memory_equal(secret, again, sizeof(secret));
	static struct workload_crypt_request in, ct, out_req;
	memcpy(in.data, "hello world", 11);
	in.len = 11;
	memcpy(in.iv, "iv", 2);
	in.iv_len = 2;
	static unsigned char c1[WORKLOAD_DATA_MAX + 64], c2[WORKLOAD_DATA_MAX + 64],
	    p[WORKLOAD_DATA_MAX + 64];
	size_t n1, n2, pn;
	assert_int_equal(workload_encrypt(secret, "web", "g1", &in, c1, sizeof(c1), &n1, &err), 0);
	assert_int_equal(workload_encrypt(secret, "web", "g1", &in, c2, sizeof(c2), &n2, &err), 0);
	assert_int_equal(n1, 11 + WORKLOAD_CRYPT_OVERHEAD);
	/* The same plaintext and vector twice: different ciphertexts. */
	assert_memory_not_equal(c1, c2, n1);
	memcpy(ct.data, c1, n1);
	ct.len = n1;
	memcpy(ct.iv, "iv", 2);
	ct.iv_len = 2;
	assert_int_equal(workload_decrypt(secret, "web", "g1", &ct, p, sizeof(p), &pn, &err), 0);
	assert_int_equal(pn, 11);
	assert_memory_equal(p, "hello world", 11);
	/* Another module, another generation, another vector, a flipped bit:
	 * refused. */
	assert_int_equal(workload_decrypt(secret, "db", "g1", &ct, p, sizeof(p), &pn, &err), -1);
	assert_int_equal(workload_decrypt(secret, "web", "g2", &ct, p, sizeof(p), &pn, &err), -1);
	out_req = ct;
	out_req.iv[0] ^= 1;
	assert_int_equal(workload_decrypt(secret, "web", "g1", &out_req, p, sizeof(p), &pn, &err),
			 -1);
	out_req = ct;
	out_req.data[out_req.len - 1] ^= 1;
	assert_int_equal(workload_decrypt(secret, "web", "g1", &out_req, p, sizeof(p), &pn, &err),
			 -1);
	assert_non_null(strstr(err.msg, "does not decrypt"));
	out_req = ct;
	out_req.data[0] = 9;
	assert_int_equal(workload_decrypt(secret, "web", "g1", &out_req, p, sizeof(p), &pn, &err),
			 -1);
	assert_non_null(strstr(err.msg, "not made by berth"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(quickstart_ca_is_an_ec_ca_valid_90_days, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		server_certificates_verify_with_the_ca_and_carry_the_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_ca_must_be_a_ca_and_match_its_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		the_quickstart_ca_renews_at_80_percent_and_the_gateway_follows, setup, teardown),
	    cmocka_unit_test_setup_teardown(an_operators_ca_is_used_and_never_replaced, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(encryption_round_trips_per_module_and_refuses_tampering,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
