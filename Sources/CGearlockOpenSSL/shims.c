#include "CGearlockOpenSSL.h"

#include <openssl/crypto.h>
#include <time.h>

int CGearlockOpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int CGearlockOpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

long CGearlockOpenSSL_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

int CGearlockOpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

uint64_t CGearlockOpenSSL_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) {
    return (uint64_t)SSL_CTX_set_options(ctx, options);
}

uint64_t CGearlockOpenSSL_default_options(void) {
    return (uint64_t)(SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                      | SSL_OP_NO_TICKET);
}

int CGearlockOpenSSL_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

long CGearlockOpenSSL_BIO_set_mem_eof_return(BIO *bio, long value) {
    return BIO_set_mem_eof_return(bio, value);
}

int CGearlockOpenSSL_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

const GENERAL_NAME *CGearlockOpenSSL_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}

void CGearlockOpenSSL_GENERAL_NAMES_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

void CGearlockOpenSSL_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

int64_t CGearlockOpenSSL_ASN1_TIME_to_epoch(const ASN1_TIME *time) {
    struct tm tm;
    if (time == NULL || ASN1_TIME_to_tm(time, &tm) != 1) {
        return 0;
    }
    return (int64_t)timegm(&tm);
}

// For `gearlock certs`: EVP_EC_gen and EVP_RSA_gen expand to calls that need these.
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <string.h>

EVP_PKEY *CGearlockOpenSSL_EVP_EC_gen(const char *curve) {
    return EVP_EC_gen(curve);
}

EVP_PKEY *CGearlockOpenSSL_EVP_RSA_gen(unsigned int bits) {
    return EVP_RSA_gen(bits);
}

X509_EXTENSION *CGearlockOpenSSL_X509V3_EXT_nconf_nid(X509 *issuer, X509 *subject, X509_CRL *crl, int nid,
                                                       const char *value) {
    X509V3_CTX ctx;
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, subject, NULL, crl, 0);
    return X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
}
