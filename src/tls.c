/*-------------------------------------------------------------------------
 *
 * tls.c
 *		Errors of the TLS checks every https request passes.
 *
 * http.c verifies every endpoint's certificate (peer and host name, always
 * on) and says which check refused it.  This file turns that into the error
 * a DBA reads: an untrusted chain points at "secretsmgr.ca_file", a
 * certificate for another name at the host of the endpoint, an unreadable
 * CA file at the file.  A refused handshake sent nothing: no request, no
 * signature, no credentials, so every detail says so.
 *
 * src/tls.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "backend.h"
#include "secretbuf.h"
#include "settings.h"
#include "stats.h"
#include "tls.h"

/* The error type name of a TLS failure, as SmAwsError.type carries it. */
const char *
sm_tls_error_type(SmHttpTlsFailure failure)
{
	switch (failure)
	{
		case SM_TLS_UNTRUSTED:
			return "TlsUntrustedCertificate";
		case SM_TLS_HOST_MISMATCH:
			return "TlsHostMismatch";
		case SM_TLS_CA_FILE:
			return "TlsCaFile";
		case SM_TLS_NONE:
		case SM_TLS_HANDSHAKE:
			break;
	}
	return "TlsError";
}

/* The host of url (palloc'd), or the redacted url when it has none. */
static char *
url_host(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	char	   *result;

	if (u != NULL && url != NULL &&
		curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		result = pstrdup(host);
	else
		result = sm_http_url_redacted(url);
	curl_free(host);
	if (u != NULL)
		curl_url_cleanup(u);
	return result;
}

/* See tls.h. */
void
sm_tls_explain(const char *service, const char *operation, const char *type,
			   const char *url, int *sqlstate, char **msg, char **detail,
			   const char **hint)
{
	char	   *shown = sm_http_url_redacted(url);
	bool		have_ca_file = sm_guc_ca_file != NULL && sm_guc_ca_file[0] != '\0';

	*sqlstate = ERRCODE_CONNECTION_FAILURE;
	if (strcmp(type, "TlsUntrustedCertificate") == 0)
	{
		*msg = psprintf("could not verify the TLS certificate of %s at \"%s\"",
						service, shown);
		*detail = have_ca_file ?
			psprintf("The endpoint's certificate is not signed by a CA of \"secretsmgr.ca_file\" (%s); %s was not sent.",
					 sm_guc_ca_file, operation) :
			psprintf("The endpoint's certificate is not signed by a CA of the system's trust store; %s was not sent.",
					 operation);
		*hint = "Set \"secretsmgr.ca_file\" to the file of the CA that issued the endpoint's certificate (a private CA, or the CA of a TLS-inspecting proxy).";
	}
	else if (strcmp(type, "TlsHostMismatch") == 0)
	{
		char	   *host = url_host(url);

		*msg = psprintf("the TLS certificate of %s at \"%s\" is not valid for host \"%s\"",
						service, shown, host);
		*detail = psprintf("The endpoint's certificate is issued for other host names than \"%s\"; %s was not sent.",
						   host, operation);
		*hint = "Name the endpoint by a host its certificate is issued for (for a VPC endpoint, its DNS name, not an IP address).";
	}
	else if (strcmp(type, "TlsCaFile") == 0)
	{
		*msg = psprintf("could not load the CA certificates of \"secretsmgr.ca_file\" (%s)",
						have_ca_file ? sm_guc_ca_file : "the system's trust store");
		*detail = psprintf("No CA certificate could be read from the file; %s to %s at \"%s\" was not sent.",
						   operation, service, shown);
		*hint = "Set \"secretsmgr.ca_file\" to a readable file of PEM CA certificates, or empty it to use the system's trust store.";
	}
	else
	{
		*msg = psprintf("the TLS handshake with %s at \"%s\" failed", service, shown);
		*detail = psprintf("%s was not sent.", operation);
		*hint = "Check that the endpoint speaks https on that port and that \"secretsmgr.ca_file\" names the CA that issued its certificate.";
	}
}
