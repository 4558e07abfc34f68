/* TLS for the TCP listener, through libssl loaded on first use: a hub
 * without listen_tcp/tls_cert never maps it. Sockets stay non-blocking;
 * every call reports whether it waits for input or for output. */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

#include "common/lazy.h"
#include "hub/broker.h"

static int ssl_failure(struct berr *err, const char *what, const char *path)
{
	unsigned long e = LAZY(ERR_get_error)();
	char buf[256] = "unknown error";
	if (e)
		LAZY(ERR_error_string_n)(e, buf, sizeof(buf));
	LAZY(ERR_clear_error)();
	return berr_set(err, 0, "%s%s%s: %s", what, path ? " " : "", path ? path : "", buf);
}

int tls_server_init(const char *cert, const char *key, void **out, struct berr *err)
{
	if (lazy_require(LAZY_SSL, err) < 0)
		return -1;
	SSL_CTX *ctx = LAZY(SSL_CTX_new)(LAZY(TLS_server_method)());
	if (!ctx)
		return ssl_failure(err, "SSL_CTX_new", NULL);
	LAZY(SSL_CTX_ctrl)(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
	/* Idle connections give their buffers back: most clients are idle. */
	LAZY(SSL_CTX_ctrl)
	(ctx, SSL_CTRL_MODE,
	 SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
	 NULL);
	if (LAZY(SSL_CTX_use_certificate_chain_file)(ctx, cert) != 1) {
		LAZY(SSL_CTX_free)(ctx);
		return ssl_failure(err, "certificate", cert);
	}
	if (LAZY(SSL_CTX_use_PrivateKey_file)(ctx, key, SSL_FILETYPE_PEM) != 1) {
		LAZY(SSL_CTX_free)(ctx);
		return ssl_failure(err, "private key", key);
	}
	if (LAZY(SSL_CTX_check_private_key)(ctx) != 1) {
		LAZY(SSL_CTX_free)(ctx);
		return ssl_failure(err, "private key does not match the certificate", NULL);
	}
	*out = ctx;
	return 0;
}

void tls_server_free(void *ctx)
{
	if (ctx)
		LAZY(SSL_CTX_free)(ctx);
}

void *tls_session_new(void *ctx, int fd, struct berr *err)
{
	SSL *ssl = LAZY(SSL_new)(ctx);
	if (!ssl) {
		ssl_failure(err, "SSL_new", NULL);
		return NULL;
	}
	if (LAZY(SSL_set_fd)(ssl, fd) != 1) {
		LAZY(SSL_free)(ssl);
		ssl_failure(err, "SSL_set_fd", NULL);
		return NULL;
	}
	return ssl;
}

void tls_session_shutdown(void *tls)
{
	/* One try: a close_notify if the socket takes it now, no waiting for
	 * the peer's. */
	if (tls) {
		LAZY(ERR_clear_error)();
		if (LAZY(SSL_shutdown)(tls) < 0)
			LAZY(ERR_clear_error)();
	}
}

void tls_session_free(void *tls)
{
	if (tls)
		LAZY(SSL_free)(tls);
}

/* Maps an SSL_* result: -2 would block, -1 failed, 0 closed. */
static int classify(SSL *ssl, int ret, bool *want_write)
{
	int e = LAZY(SSL_get_error)(ssl, ret);
	*want_write = e == SSL_ERROR_WANT_WRITE;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -2;
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	return -1;
}

int tls_handshake(void *tls, bool *want_write, struct berr *err)
{
	LAZY(ERR_clear_error)();
	int ret = LAZY(SSL_accept)(tls);
	if (ret == 1) {
		*want_write = false;
		return 0;
	}
	int rc = classify(tls, ret, want_write);
	if (rc == -2)
		return 1;
	return ssl_failure(err, "TLS handshake", NULL);
}

/* What SSL_read or SSL_write returned, as tls_read and tls_write return it
 * (a clean close is 0). */
static ssize_t io_result(void *tls, int ret, bool *want_write)
{
	if (ret > 0)
		return ret;
	int rc = classify(tls, ret, want_write);
	LAZY(ERR_clear_error)();
	return rc;
}

ssize_t tls_read(void *tls, void *buf, size_t len, bool *want_write)
{
	LAZY(ERR_clear_error)();
	int ret = LAZY(SSL_read)(tls, buf, len > INT_MAX ? INT_MAX : (int)len);
	return io_result(tls, ret, want_write);
}

ssize_t tls_write(void *tls, const void *buf, size_t len, bool *want_write)
{
	LAZY(ERR_clear_error)();
	ssize_t rc = io_result(tls, LAZY(SSL_write)(tls, buf, len > INT_MAX ? INT_MAX : (int)len),
			       want_write);
	return rc == 0 ? -1 : rc;
}
