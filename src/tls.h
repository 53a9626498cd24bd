/*
 * tls.h
 *		What a refused TLS certificate means, in a message a DBA can act on.
 */
#ifndef SECRETSMGR_TLS_H
#define SECRETSMGR_TLS_H

#include "postgres.h"

#include "http.h"

/* The error type name (SmAwsError.type) of a TLS failure. */
extern const char *sm_tls_error_type(SmHttpTlsFailure failure);

/*
 * Message, detail and hint (palloc'd or static) for a request that
 * service ("Secrets Manager") refused at the TLS handshake: type is
 * sm_tls_error_type's name, url the endpoint.
 */
extern void sm_tls_explain(const char *service, const char *operation,
						   const char *type, const char *url, int *sqlstate,
						   char **msg, char **detail, const char **hint);

#endif							/* SECRETSMGR_TLS_H */
