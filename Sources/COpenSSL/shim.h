#ifndef GEARLOCK_COPENSSL_SHIM_H
#define GEARLOCK_COPENSSL_SHIM_H

// Hide the APIs OpenSSL 3 deprecates, so Swift never sees (or warns about) them.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#endif
