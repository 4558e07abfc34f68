/* libssl, loaded on first use (see common/lazy.h). */
#include <openssl/ssl.h>

#include "common/lazy.h"

LAZY_FN(LAZY_SSL, const SSL_METHOD *, TLS_server_method, (void), ())
