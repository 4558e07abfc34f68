/* libssl, loaded on first use (see common/lazy.h). The ERR_* functions live
 * in libcrypto; they are resolved through libssl's handle, which reaches its
 * libcrypto dependency, so the TLS code needs only LAZY_SSL. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/lazy.h"

LAZY_FN(LAZY_SSL, const SSL_METHOD *, TLS_server_method, (void), ())
LAZY_FN(LAZY_SSL, SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *method), (method))
LAZY_VOID_FN(LAZY_SSL, SSL_CTX_free, (SSL_CTX * ctx), (ctx))
LAZY_FN(LAZY_SSL, long, SSL_CTX_ctrl, (SSL_CTX * ctx, int cmd, long larg, void *parg),
	(ctx, cmd, larg, parg))
LAZY_FN(LAZY_SSL, int, SSL_CTX_use_certificate_chain_file, (SSL_CTX * ctx, const char *file),
	(ctx, file))
LAZY_FN(LAZY_SSL, int, SSL_CTX_use_PrivateKey_file, (SSL_CTX * ctx, const char *file, int type),
	(ctx, file, type))
LAZY_FN(LAZY_SSL, int, SSL_CTX_check_private_key, (const SSL_CTX *ctx), (ctx))
LAZY_FN(LAZY_SSL, SSL *, SSL_new, (SSL_CTX * ctx), (ctx))
LAZY_VOID_FN(LAZY_SSL, SSL_free, (SSL * ssl), (ssl))
LAZY_FN(LAZY_SSL, int, SSL_set_fd, (SSL * ssl, int fd), (ssl, fd))
LAZY_FN(LAZY_SSL, int, SSL_accept, (SSL * ssl), (ssl))
LAZY_FN(LAZY_SSL, int, SSL_read, (SSL * ssl, void *buf, int num), (ssl, buf, num))
LAZY_FN(LAZY_SSL, int, SSL_write, (SSL * ssl, const void *buf, int num), (ssl, buf, num))
LAZY_FN(LAZY_SSL, int, SSL_get_error, (const SSL *ssl, int ret), (ssl, ret))
LAZY_FN(LAZY_SSL, int, SSL_shutdown, (SSL * ssl), (ssl))
LAZY_FN(LAZY_SSL, unsigned long, ERR_get_error, (void), ())
LAZY_VOID_FN(LAZY_SSL, ERR_error_string_n, (unsigned long e, char *buf, size_t len), (e, buf, len))
LAZY_VOID_FN(LAZY_SSL, ERR_clear_error, (void), ())
LAZY_FN(LAZY_SSL, const SSL_METHOD *, TLS_client_method, (void), ())
LAZY_FN(LAZY_SSL, int, SSL_CTX_set_default_verify_paths, (SSL_CTX * ctx), (ctx))
LAZY_FN(LAZY_SSL, int, SSL_CTX_load_verify_locations,
	(SSL_CTX * ctx, const char *file, const char *path), (ctx, file, path))
LAZY_VOID_FN(LAZY_SSL, SSL_CTX_set_verify,
	     (SSL_CTX * ctx, int mode, int (*cb)(int, X509_STORE_CTX *)), (ctx, mode, cb))
LAZY_FN(LAZY_SSL, X509_VERIFY_PARAM *, SSL_CTX_get0_param, (SSL_CTX * ctx), (ctx))
LAZY_FN(LAZY_SSL, int, X509_VERIFY_PARAM_set1_host,
	(X509_VERIFY_PARAM * param, const char *name, size_t namelen), (param, name, namelen))
LAZY_FN(LAZY_SSL, int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM * param, const char *ip),
	(param, ip))
LAZY_VOID_FN(LAZY_SSL, SSL_CTX_set_info_callback,
	     (SSL_CTX * ctx, void (*cb)(const SSL *, int, int)), (ctx, cb))
LAZY_FN(LAZY_SSL, long, SSL_ctrl, (SSL * ssl, int cmd, long larg, void *parg),
	(ssl, cmd, larg, parg))
LAZY_FN(LAZY_SSL, SSL_CTX *, SSL_get_SSL_CTX, (const SSL *ssl), (ssl))
LAZY_FN(LAZY_SSL, void *, SSL_CTX_get_ex_data, (const SSL_CTX *ctx, int idx), (ctx, idx))
LAZY_FN(LAZY_SSL, int, SSL_CTX_set_ex_data, (SSL_CTX * ctx, int idx, void *data), (ctx, idx, data))
LAZY_FN(LAZY_SSL, int, X509_STORE_CTX_get_error, (const X509_STORE_CTX *ctx), (ctx))
LAZY_FN(LAZY_SSL, const char *, X509_verify_cert_error_string, (long n), (n))
