/* The workload API against hostile bytes: the HTTP request parser, and the
 * checks of each body a module may send (sign, certificate/server,
 * encrypt, decrypt). A request the parser takes names a module and a
 * generation id that are in the input, and a body inside it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct workload_request req;
	int status;
	struct berr err;
	const char *buf = (const char *)data;
	if (workload_parse_request(buf, size, &req, &status, &err) != 1)
		return 0;
	if (req.body_len && (req.body < buf || req.body + req.body_len > buf + size))
		abort();
	if (req.module[0] && !module_name_valid(req.module))
		abort();
	char digest[128];
	(void)workload_sign(req.body, req.body_len,
			    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", digest, sizeof(digest),
			    &status, &err);
	struct workload_cert_request cr;
	if (workload_cert_request_parse(req.body, req.body_len, 1700000000, &cr, &status, &err) ==
		0 &&
	    (!cr.common_name[0] || strlen(cr.common_name) > WORKLOAD_CN_MAX ||
	     (cr.expiration && cr.expiration <= 1700000000)))
		abort();
	static struct workload_crypt_request crypt;
	for (int d = 0; d < 2; d++)
		if (workload_crypt_request_parse(req.body, req.body_len, d, &crypt, &status,
						 &err) == 0 &&
		    (crypt.iv_len == 0 || crypt.iv_len > sizeof(crypt.iv) ||
		     crypt.len > sizeof(crypt.data)))
			abort();
	return 0;
}
