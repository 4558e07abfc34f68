/* libcurl, loaded on first use (see common/lazy.h). The variadic setters
 * take their argument by the type the option number encodes. */
#include <curl/curl.h>
#include <stdarg.h>

#include "common/lazy.h"

#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

LAZY_FN(LAZY_CURL, CURLcode, curl_global_init, (long flags), (flags))
LAZY_FN(LAZY_CURL, CURL *, curl_easy_init, (void), ())
LAZY_VOID_FN(LAZY_CURL, curl_easy_cleanup, (CURL * h), (h))
LAZY_VOID_FN(LAZY_CURL, curl_easy_reset, (CURL * h), (h))
LAZY_FN(LAZY_CURL, CURLcode, curl_easy_perform, (CURL * h), (h))
LAZY_FN(LAZY_CURL, const char *, curl_easy_strerror, (CURLcode code), (code))
LAZY_FN(LAZY_CURL, CURLcode, curl_easy_pause, (CURL * h, int bitmask), (h, bitmask))
LAZY_FN(LAZY_CURL, struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s),
	(l, s))
LAZY_VOID_FN(LAZY_CURL, curl_slist_free_all, (struct curl_slist * l), (l))
LAZY_FN(LAZY_CURL, CURLM *, curl_multi_init, (void), ())
LAZY_FN(LAZY_CURL, CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
LAZY_FN(LAZY_CURL, CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *h), (m, h))
LAZY_FN(LAZY_CURL, CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *h), (m, h))
LAZY_FN(LAZY_CURL, CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))
LAZY_FN(LAZY_CURL, CURLMcode, curl_multi_poll,
	(CURLM * m, struct curl_waitfd *extra, unsigned int n, int timeout_ms, int *numfds),
	(m, extra, n, timeout_ms, numfds))
LAZY_FN(LAZY_CURL, CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))
LAZY_FN(LAZY_CURL, const char *, curl_multi_strerror, (CURLMcode code), (code))

CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...)
{
	typedef CURLcode (*long_fn)(CURL *, CURLoption, long);
	typedef CURLcode (*ptr_fn)(CURL *, CURLoption, void *);
	typedef CURLcode (*off_fn)(CURL *, CURLoption, curl_off_t);
	static void *fp;
	void *f = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
	if (!f) {
		f = lazy_sym(LAZY_CURL, "curl_easy_setopt");
		__atomic_store_n(&fp, f, __ATOMIC_RELEASE);
	}
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = ((long_fn)f)(h, option, va_arg(ap, long));
	else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
		rc = ((off_fn)f)(h, option, va_arg(ap, curl_off_t));
	else /* object, function and blob pointers */
		rc = ((ptr_fn)f)(h, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	typedef CURLcode (*ptr_fn)(CURL *, CURLINFO, void *);
	static void *fp;
	void *f = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
	if (!f) {
		f = lazy_sym(LAZY_CURL, "curl_easy_getinfo");
		__atomic_store_n(&fp, f, __ATOMIC_RELEASE);
	}
	va_list ap;
	va_start(ap, info);
	CURLcode rc = ((ptr_fn)f)(h, info, va_arg(ap, void *)); /* always a pointer to the result */
	va_end(ap);
	return rc;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
	typedef CURLMcode (*long_fn)(CURLM *, CURLMoption, long);
	typedef CURLMcode (*ptr_fn)(CURLM *, CURLMoption, void *);
	typedef CURLMcode (*off_fn)(CURLM *, CURLMoption, curl_off_t);
	static void *fp;
	void *f = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);
	if (!f) {
		f = lazy_sym(LAZY_CURL, "curl_multi_setopt");
		__atomic_store_n(&fp, f, __ATOMIC_RELEASE);
	}
	va_list ap;
	va_start(ap, option);
	CURLMcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = ((long_fn)f)(m, option, va_arg(ap, long));
	else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
		rc = ((off_fn)f)(m, option, va_arg(ap, curl_off_t));
	else
		rc = ((ptr_fn)f)(m, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
