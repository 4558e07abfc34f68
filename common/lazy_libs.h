/* Private to common/: the libraries berth loads on first use, each with the
 * one list of the functions berth calls in it (X-macros, names only: the
 * types come from the library's own header at each call, see common/lazy.h).
 * A function missing from its list does not compile at its call; a list
 * entry the installed library lacks fails tests/unit/test_lazy.c.
 *
 * Sonames come from the build (the Makefile reads them from the libraries it
 * compiles against); the defaults match Debian 12. */
#ifndef BERTH_LAZY_LIBS_H
#define BERTH_LAZY_LIBS_H

/* libcrypto: digests of pulled content (common/digest.c), the edge CA and the
 * workload API's certificates and encryption (agent/edgeca.c,
 * agent/workload_crypt.c), the upstream's certificate checks (hub/upstream_tls.c),
 * and the error queue of every OpenSSL call. */
#define LAZY_CRYPTO_SYMS(X)                                                                        \
	X(EVP_MD_CTX_new)                                                                          \
	X(EVP_MD_CTX_free)                                                                         \
	X(EVP_sha256)                                                                              \
	X(EVP_sha512)                                                                              \
	X(EVP_DigestInit_ex)                                                                       \
	X(EVP_DigestUpdate)                                                                        \
	X(EVP_DigestFinal_ex)                                                                      \
	X(ERR_get_error)                                                                           \
	X(ERR_error_string_n)                                                                      \
	X(ERR_clear_error)                                                                         \
	X(EVP_PKEY_Q_keygen)                                                                       \
	X(EVP_PKEY_free)                                                                           \
	X(X509_new)                                                                                \
	X(X509_free)                                                                               \
	X(X509_set_version)                                                                        \
	X(X509_get_serialNumber)                                                                   \
	X(X509_getm_notBefore)                                                                     \
	X(X509_getm_notAfter)                                                                      \
	X(X509_get0_notBefore)                                                                     \
	X(X509_get0_notAfter)                                                                      \
	X(X509_get_subject_name)                                                                   \
	X(X509_set_issuer_name)                                                                    \
	X(X509_set_pubkey)                                                                         \
	X(X509_NAME_add_entry_by_txt)                                                              \
	X(X509_add_ext)                                                                            \
	X(X509_sign)                                                                               \
	X(X509_check_private_key)                                                                  \
	X(X509_check_ca)                                                                           \
	X(X509_EXTENSION_free)                                                                     \
	X(X509V3_set_ctx)                                                                          \
	X(X509V3_EXT_conf_nid)                                                                     \
	X(ASN1_TIME_set)                                                                           \
	X(ASN1_TIME_to_tm)                                                                         \
	X(BN_new)                                                                                  \
	X(BN_free)                                                                                 \
	X(BN_rand)                                                                                 \
	X(BN_to_ASN1_INTEGER)                                                                      \
	X(BIO_new)                                                                                 \
	X(BIO_s_mem)                                                                               \
	X(BIO_new_mem_buf)                                                                         \
	X(BIO_ctrl)                                                                                \
	X(BIO_free)                                                                                \
	X(PEM_write_bio_X509)                                                                      \
	X(PEM_write_bio_PrivateKey)                                                                \
	X(PEM_read_bio_X509)                                                                       \
	X(PEM_read_bio_PrivateKey)                                                                 \
	X(EVP_CIPHER_CTX_new)                                                                      \
	X(EVP_CIPHER_CTX_free)                                                                     \
	X(EVP_CIPHER_CTX_ctrl)                                                                     \
	X(EVP_aes_256_gcm)                                                                         \
	X(EVP_CipherInit_ex)                                                                       \
	X(EVP_CipherUpdate)                                                                        \
	X(EVP_CipherFinal_ex)                                                                      \
	X(X509_VERIFY_PARAM_set1_host)                                                             \
	X(X509_VERIFY_PARAM_set1_ip_asc)                                                           \
	X(X509_verify_cert_error_string)                                                           \
	X(X509_STORE_CTX_get_error)

/* libssl: the hub's TLS listeners (hub/tls.c) and the upstream's client
 * context (hub/upstream_tls.c). */
#define LAZY_SSL_SYMS(X)                                                                           \
	X(TLS_server_method)                                                                       \
	X(SSL_CTX_new)                                                                             \
	X(SSL_CTX_free)                                                                            \
	X(SSL_CTX_ctrl)                                                                            \
	X(SSL_CTX_use_certificate_chain_file)                                                      \
	X(SSL_CTX_use_PrivateKey_file)                                                             \
	X(SSL_CTX_check_private_key)                                                               \
	X(SSL_new)                                                                                 \
	X(SSL_free)                                                                                \
	X(SSL_set_fd)                                                                              \
	X(SSL_accept)                                                                              \
	X(SSL_read)                                                                                \
	X(SSL_write)                                                                               \
	X(SSL_shutdown)                                                                            \
	X(SSL_get_error)                                                                           \
	X(TLS_client_method)                                                                       \
	X(SSL_CTX_set_default_verify_paths)                                                        \
	X(SSL_CTX_load_verify_locations)                                                           \
	X(SSL_CTX_set_verify)                                                                      \
	X(SSL_CTX_get0_param)                                                                      \
	X(SSL_CTX_set_info_callback)                                                               \
	X(SSL_ctrl)                                                                                \
	X(SSL_get_SSL_CTX)                                                                         \
	X(SSL_CTX_get_ex_data)                                                                     \
	X(SSL_CTX_set_ex_data)

/* libcurl: the registry client (registry/client.c) and the identity calls
 * (agent/identity_sync.c). */
#define LAZY_CURL_SYMS(X)                                                                          \
	X(curl_global_init)                                                                        \
	X(curl_easy_init)                                                                          \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_strerror)                                                                      \
	X(curl_easy_pause)                                                                         \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)                                                                     \
	X(curl_multi_init)                                                                         \
	X(curl_multi_cleanup)                                                                      \
	X(curl_multi_setopt)                                                                       \
	X(curl_multi_add_handle)                                                                   \
	X(curl_multi_remove_handle)                                                                \
	X(curl_multi_perform)                                                                      \
	X(curl_multi_poll)                                                                         \
	X(curl_multi_info_read)                                                                    \
	X(curl_multi_strerror)                                                                     \
	X(curl_easy_reset)

/* libarchive: reading layers (oci/unpack.c), writing the support bundle
 * (agent/support_bundle.c). */
#define LAZY_ARCHIVE_SYMS(X)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_support_format_tar)                                                         \
	X(archive_read_support_format_empty)                                                       \
	X(archive_read_open)                                                                       \
	X(archive_read_next_header)                                                                \
	X(archive_read_data_block)                                                                 \
	X(archive_read_free)                                                                       \
	X(archive_error_string)                                                                    \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_uid)                                                                       \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_nsec)                                                                \
	X(archive_entry_mtime_is_set)                                                              \
	X(archive_entry_atime)                                                                     \
	X(archive_entry_atime_nsec)                                                                \
	X(archive_entry_atime_is_set)                                                              \
	X(archive_entry_size)                                                                      \
	X(archive_entry_size_is_set)                                                               \
	X(archive_entry_xattr_reset)                                                               \
	X(archive_entry_xattr_next)                                                                \
	X(archive_write_new)                                                                       \
	X(archive_write_add_filter_gzip)                                                           \
	X(archive_write_set_format_pax_restricted)                                                 \
	X(archive_write_open_filename)                                                             \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_header)                                                                    \
	X(archive_write_data)                                                                      \
	X(archive_write_close)                                                                     \
	X(archive_write_free)                                                                      \
	X(archive_entry_new)                                                                       \
	X(archive_entry_free)                                                                      \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_mtime)

/* libmosquitto: an MQTT client for the upstream connection. */
#define LAZY_MOSQUITTO_SYMS(X)                                                                     \
	X(mosquitto_lib_init)                                                                      \
	X(mosquitto_lib_cleanup)                                                                   \
	X(mosquitto_lib_version)                                                                   \
	X(mosquitto_new)                                                                           \
	X(mosquitto_destroy)                                                                       \
	X(mosquitto_threaded_set)                                                                  \
	X(mosquitto_int_option)                                                                    \
	X(mosquitto_string_option)                                                                 \
	X(mosquitto_opts_set)                                                                      \
	X(mosquitto_username_pw_set)                                                               \
	X(mosquitto_will_set)                                                                      \
	X(mosquitto_tls_set)                                                                       \
	X(mosquitto_tls_opts_set)                                                                  \
	X(mosquitto_tls_insecure_set)                                                              \
	X(mosquitto_max_inflight_messages_set)                                                     \
	X(mosquitto_reconnect_delay_set)                                                           \
	X(mosquitto_connect)                                                                       \
	X(mosquitto_connect_async)                                                                 \
	X(mosquitto_reconnect)                                                                     \
	X(mosquitto_reconnect_async)                                                               \
	X(mosquitto_disconnect)                                                                    \
	X(mosquitto_socket)                                                                        \
	X(mosquitto_want_write)                                                                    \
	X(mosquitto_loop_read)                                                                     \
	X(mosquitto_loop_write)                                                                    \
	X(mosquitto_loop_misc)                                                                     \
	X(mosquitto_publish)                                                                       \
	X(mosquitto_subscribe)                                                                     \
	X(mosquitto_unsubscribe)                                                                   \
	X(mosquitto_user_data_set)                                                                 \
	X(mosquitto_connect_callback_set)                                                          \
	X(mosquitto_disconnect_callback_set)                                                       \
	X(mosquitto_publish_callback_set)                                                          \
	X(mosquitto_message_callback_set)                                                          \
	X(mosquitto_subscribe_callback_set)                                                        \
	X(mosquitto_log_callback_set)                                                              \
	X(mosquitto_strerror)                                                                      \
	X(mosquitto_connack_string)                                                                \
	X(mosquitto_void_option)

/* zlib: gzip layers where ISA-L is missing (oci/decompress.c). */
#define LAZY_Z_SYMS(X)                                                                             \
	X(inflateInit2_)                                                                           \
	X(inflate)                                                                                 \
	X(inflateReset)                                                                            \
	X(inflateEnd)

/* libzstd: zstd layers (oci/decompress.c). */
#define LAZY_ZSTD_SYMS(X)                                                                          \
	X(ZSTD_createDCtx)                                                                         \
	X(ZSTD_freeDCtx)                                                                           \
	X(ZSTD_DCtx_setParameter)                                                                  \
	X(ZSTD_decompressStream)                                                                   \
	X(ZSTD_isError)                                                                            \
	X(ZSTD_getErrorName)

/* ISA-L's igzip: gzip layers about twice as fast as zlib, where the build
 * found the library (oci/decompress.c). */
#define LAZY_ISAL_SYMS(X)                                                                          \
	X(isal_inflate_init)                                                                       \
	X(isal_inflate_reset)                                                                      \
	X(isal_inflate)

/* libseccomp: building an instance's filter (shim/seccomp*.c). */
#define LAZY_SECCOMP_SYMS(X)                                                                       \
	X(seccomp_init)                                                                            \
	X(seccomp_release)                                                                         \
	X(seccomp_arch_add)                                                                        \
	X(seccomp_arch_native)                                                                     \
	X(seccomp_arch_resolve_name)                                                               \
	X(seccomp_attr_set)                                                                        \
	X(seccomp_export_bpf)                                                                      \
	X(seccomp_rule_add_array)                                                                  \
	X(seccomp_syscall_resolve_name)                                                            \
	X(seccomp_syscall_resolve_name_arch)                                                       \
	X(seccomp_version)

/* libcap: an instance's capability sets (shim/caps.c). */
#define LAZY_CAP_SYMS(X)                                                                           \
	X(cap_free)                                                                                \
	X(cap_from_name)                                                                           \
	X(cap_to_name)                                                                             \
	X(cap_init)                                                                                \
	X(cap_get_proc)                                                                            \
	X(cap_set_proc)                                                                            \
	X(cap_get_flag)                                                                            \
	X(cap_set_flag)

/* libm: the route functions power, exp, sqrt, ceiling and floor and the %
 * operator (hub/route_eval.c). Compilers inline ceil and floor on x86-64 and
 * arm64, but call libm for them on 32-bit ARM. */
#define LAZY_M_SYMS(X)                                                                             \
	X(pow)                                                                                     \
	X(exp)                                                                                     \
	X(sqrt)                                                                                    \
	X(fmod)                                                                                    \
	X(ceil)                                                                                    \
	X(floor)

#ifndef LAZY_SONAME_CRYPTO
#define LAZY_SONAME_CRYPTO "libcrypto.so.3"
#endif
#ifndef LAZY_SONAME_SSL
#define LAZY_SONAME_SSL "libssl.so.3"
#endif
#ifndef LAZY_SONAME_CURL
#define LAZY_SONAME_CURL "libcurl.so.4"
#endif
#ifndef LAZY_SONAME_ARCHIVE
#define LAZY_SONAME_ARCHIVE "libarchive.so.13"
#endif
#ifndef LAZY_SONAME_MOSQUITTO
#define LAZY_SONAME_MOSQUITTO "libmosquitto.so.1"
#endif
#ifndef LAZY_SONAME_Z
#define LAZY_SONAME_Z "libz.so.1"
#endif
#ifndef LAZY_SONAME_ZSTD
#define LAZY_SONAME_ZSTD "libzstd.so.1"
#endif
#ifndef LAZY_SONAME_ISAL
#define LAZY_SONAME_ISAL "libisal.so.2"
#endif
#ifndef LAZY_SONAME_SECCOMP
#define LAZY_SONAME_SECCOMP "libseccomp.so.2"
#endif
#ifndef LAZY_SONAME_CAP
#define LAZY_SONAME_CAP "libcap.so.2"
#endif
#ifndef LAZY_SONAME_M
#define LAZY_SONAME_M "libm.so.6"
#endif

/* L(ID, soname, symbol list) for every library. */
#define LAZY_LIBRARIES(L)                                                                          \
	L(CRYPTO, LAZY_SONAME_CRYPTO, LAZY_CRYPTO_SYMS)                                            \
	L(SSL, LAZY_SONAME_SSL, LAZY_SSL_SYMS)                                                     \
	L(CURL, LAZY_SONAME_CURL, LAZY_CURL_SYMS)                                                  \
	L(ARCHIVE, LAZY_SONAME_ARCHIVE, LAZY_ARCHIVE_SYMS)                                         \
	L(MOSQUITTO, LAZY_SONAME_MOSQUITTO, LAZY_MOSQUITTO_SYMS)                                   \
	L(Z, LAZY_SONAME_Z, LAZY_Z_SYMS)                                                           \
	L(ZSTD, LAZY_SONAME_ZSTD, LAZY_ZSTD_SYMS)                                                  \
	L(ISAL, LAZY_SONAME_ISAL, LAZY_ISAL_SYMS)                                                  \
	L(SECCOMP, LAZY_SONAME_SECCOMP, LAZY_SECCOMP_SYMS)                                         \
	L(CAP, LAZY_SONAME_CAP, LAZY_CAP_SYMS)                                                     \
	L(M, LAZY_SONAME_M, LAZY_M_SYMS)

#endif
