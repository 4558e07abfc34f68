/* The client TLS context of the upstream connections, handed to
 * libmosquitto (MOSQ_OPT_SSL_CTX) so berth decides what is trusted: the
 * system CAs plus ca_file, TLS 1.2 at least, and a certificate that names
 * the upstream host. libmosquitto is given the host's address (resolved
 * off the loop), so the host name goes into SNI here, when the handshake
 * starts. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lazy.h"
#include "common/url.h"
#include "hub/upstream_conn.h"

struct tls_host {
	char name[URL_HOST_MAX + 1];
	bool is_address;
};

static void on_tls_info(const SSL *ssl, int where, int ret)
{
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	SSL_CTX *ctx = LAZY(SSL_get_SSL_CTX)(ssl);
	const struct tls_host *h = LAZY(SSL_CTX_get_ex_data)(ctx, 0);
	/* An address is no server name (RFC 6066): none is sent then. */
	if (h && !h->is_address)
		LAZY(SSL_ctrl)
		((SSL *)ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
		 (void *)h->name);
}

/* The hub runs one connection's handshake at a time, in the call that
 * libmosquitto makes for it: the failure seen last is that connection's. */
static char verify_error[160];

static int on_verify(int ok, X509_STORE_CTX *x)
{
	if (!ok && !verify_error[0])
		snprintf(verify_error, sizeof(verify_error), "the server's certificate: %s",
			 LAZY(X509_verify_cert_error_string)(LAZY(X509_STORE_CTX_get_error)(x)));
	return ok;
}

void upstream_tls_take_error(char *out, size_t cap)
{
	if (verify_error[0])
		snprintf(out, cap, "%s", verify_error);
	verify_error[0] = '\0';
}

static void tls_error(struct berr *err, const char *what)
{
	char buf[256] = "";
	unsigned long e = LAZY(ERR_get_error)();
	if (e)
		LAZY(ERR_error_string_n)(e, buf, sizeof(buf));
	LAZY(ERR_clear_error)();
	berr_set(err, 0, "upstream TLS: %s%s%s", what, buf[0] ? ": " : "", buf);
}

int upstream_tls_ctx(const char *host, const char *ca_file, void **out, struct berr *err)
{
	*out = NULL;
	struct tls_host *h = calloc(1, sizeof(*h));
	SSL_CTX *ctx = LAZY(SSL_CTX_new)(LAZY(TLS_client_method)());
	if (!h || !ctx) {
		free(h);
		if (ctx)
			LAZY(SSL_CTX_free)(ctx);
		tls_error(err, "cannot make a context");
		return -1;
	}
	snprintf(h->name, sizeof(h->name), "%s", host);
	h->is_address = url_host_is_address(host);
	X509_VERIFY_PARAM *param = LAZY(SSL_CTX_get0_param)(ctx);
	int ok =
	    LAZY(SSL_CTX_ctrl)(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) == 1 &&
	    LAZY(SSL_CTX_set_default_verify_paths)(ctx) == 1 &&
	    (h->is_address ? LAZY(X509_VERIFY_PARAM_set1_ip_asc)(param, host)
			   : LAZY(X509_VERIFY_PARAM_set1_host)(param, host, 0)) == 1 &&
	    LAZY(SSL_CTX_set_ex_data)(ctx, 0, h) == 1;
	if (ok && ca_file && LAZY(SSL_CTX_load_verify_locations)(ctx, ca_file, NULL) != 1) {
		char what[4200];
		snprintf(what, sizeof(what), "cannot read the CA certificates in %s", ca_file);
		tls_error(err, what);
		LAZY(SSL_CTX_free)(ctx);
		free(h);
		return -1;
	}
	if (!ok) {
		tls_error(err, "cannot set up the context");
		LAZY(SSL_CTX_free)(ctx);
		free(h);
		return -1;
	}
	LAZY(SSL_CTX_set_verify)(ctx, SSL_VERIFY_PEER, on_verify);
	LAZY(SSL_CTX_set_info_callback)(ctx, on_tls_info);
	*out = ctx;
	return 0;
}

void upstream_tls_free(void *p)
{
	SSL_CTX *ctx = p;
	if (!ctx)
		return;
	free(LAZY(SSL_CTX_get_ex_data)(ctx, 0));
	LAZY(SSL_CTX_free)(ctx);
}
