#ifndef C_GEARLOCK_OPENSSL_H
#define C_GEARLOCK_OPENSSL_H

#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdint.h>

// Function wrappers for OpenSSL macros that Swift's ClangImporter cannot import.

int CGearlockOpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int CGearlockOpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long CGearlockOpenSSL_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
int CGearlockOpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
uint64_t CGearlockOpenSSL_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options);
uint64_t CGearlockOpenSSL_default_options(void);
int CGearlockOpenSSL_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long CGearlockOpenSSL_BIO_set_mem_eof_return(BIO *bio, long value);

int CGearlockOpenSSL_sk_GENERAL_NAME_num(const GENERAL_NAMES *names);
const GENERAL_NAME *CGearlockOpenSSL_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int index);
void CGearlockOpenSSL_GENERAL_NAMES_free(GENERAL_NAMES *names);

void CGearlockOpenSSL_OPENSSL_free(void *pointer);

/// Seconds since the epoch of an ASN1_TIME, or 0 when it cannot be read.
int64_t CGearlockOpenSSL_ASN1_TIME_to_epoch(const ASN1_TIME *time);


// Wrappers for `gearlock certs` (the CertificateAuthority in GearmanTLS).

/// EVP_EC_gen: a macro over the variadic EVP_PKEY_Q_keygen. `curve` is e.g. "P-256".
EVP_PKEY *CGearlockOpenSSL_EVP_EC_gen(const char *curve);
/// EVP_RSA_gen: a macro over the variadic EVP_PKEY_Q_keygen.
EVP_PKEY *CGearlockOpenSSL_EVP_RSA_gen(unsigned int bits);

/// One X.509 v3 extension from its configuration text (as in openssl.cnf, e.g. "critical,CA:TRUE"):
/// X509V3_set_ctx_nodb (a macro) and X509V3_set_ctx, then X509V3_EXT_nconf_nid without a config
/// database. `subject` or `crl` is the object the extension is for; either may be NULL.
X509_EXTENSION *CGearlockOpenSSL_X509V3_EXT_nconf_nid(X509 *issuer, X509 *subject, X509_CRL *crl, int nid,
                                                       const char *value);

#endif
