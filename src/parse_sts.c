/*-------------------------------------------------------------------------
 *
 * parse_sts.c
 *		AWS STS answers (XML) through libxml2, hardened for hostile input.
 *
 * STS speaks the Query protocol: its answers are XML in the namespace
 * https://sts.amazonaws.com/doc/2011-06-15/.  Elements are matched by
 * local name, as botocore's query parser does.  The hardening:
 *
 * - a size limit (SM_STS_BODY_MAX) before anything is parsed;
 * - a document type or entity declaration is refused before libxml2 sees
 *   the body, and a parsed document with a DTD is refused too: no entity
 *   is ever declared, loaded or expanded;
 * - XML_PARSE_NONET (no network), no DTD loading, no XML_PARSE_HUGE (so
 *   libxml2's depth and size limits hold), XML_PARSE_NODICT (text is never
 *   kept in a dictionary that outlives the document);
 * - libxml2 reports nothing: its error text could quote the body;
 * - libxml2 zeroes every block it frees (its input copies and the text
 *   nodes hold keys and tokens), and the outputs are zeroed on release.
 *
 * src/parse_sts.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* memmem */
#endif
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "parse.h"
#include "parse_sts.h"

/* Longest ARN kept from an answer (IAM's limit). */
#define SM_STS_ARN_MAX			2048

/* free() that zeroes the block first (compatible with plain malloc). */
static void
zeroing_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* realloc() that never leaves a moved block behind unzeroed. */
static void *
zeroing_realloc(void *p, size_t size)
{
	void	   *q;
	size_t		old;

	if (p == NULL)
		return malloc(size);
	q = malloc(size > 0 ? size : 1);
	if (q == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < size ? old : size);
	zeroing_free(p);
	return q;
}

/* strdup() for libxml2 (its blocks are freed by zeroing_free). */
static char *
plain_strdup(const char *s)
{
	return strdup(s);
}

/* Install the zeroing allocator in libxml2; see parse_sts.h. */
void
sm_parse_sts_init(void)
{
	static int	done = 0;

	if (done)
		return;
	xmlMemSetup(zeroing_free, malloc, zeroing_realloc, plain_strdup);
	done = 1;
}

/* libxml2's error reports go nowhere (they could quote the body). */
static void
silent_error(void *ctx, xmlErrorPtr error)
{
	(void) ctx;
	(void) error;
}

/* Does the body hold needle anywhere? */
static int
holds(const char *body, size_t len, const char *needle)
{
	return memmem(body, len, needle, strlen(needle)) != NULL;
}

/*
 * Parse body into a document, or NULL when it is too large, declares a
 * document type or entities, or is not well-formed XML.
 */
static xmlDocPtr
read_document(const char *body, size_t len)
{
	xmlParserCtxtPtr ctxt;
	xmlDocPtr	doc;

	if (body == NULL || len == 0 || len > SM_STS_BODY_MAX)
		return NULL;
	if (holds(body, len, "<!DOCTYPE") || holds(body, len, "<!ENTITY") ||
		memchr(body, '\0', len) != NULL)
		return NULL;

	sm_parse_sts_init();
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL)
		return NULL;
	if (ctxt->sax != NULL)
		ctxt->sax->serror = silent_error;
	doc = xmlCtxtReadMemory(ctxt, body, (int) len, NULL, NULL,
							XML_PARSE_NONET | XML_PARSE_NODICT |
							XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlFreeParserCtxt(ctxt);
	if (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL))
	{
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

/*
 * The one child element of parent named name (local name), or NULL; *dup
 * is set when there are several (an ambiguous answer).
 */
static xmlNodePtr
child_element(xmlNodePtr parent, const char *name, int *dup)
{
	xmlNodePtr	found = NULL;

	if (parent == NULL)
		return NULL;
	for (xmlNodePtr c = parent->children; c != NULL; c = c->next)
	{
		if (c->type != XML_ELEMENT_NODE || c->name == NULL ||
			strcmp((const char *) c->name, name) != 0)
			continue;
		if (found != NULL)
		{
			*dup = 1;
			return NULL;
		}
		found = c;
	}
	return found;
}

/*
 * The text of element e, trimmed, as a malloc'd string; NULL when e is
 * missing, holds an element, or is out of memory.
 */
static char *
element_text(xmlNodePtr e)
{
	xmlChar    *content;
	char	   *trimmed;
	char	   *out;

	if (e == NULL)
		return NULL;
	for (xmlNodePtr c = e->children; c != NULL; c = c->next)
	{
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			return NULL;
	}
	content = xmlNodeGetContent(e);
	if (content == NULL)
		return NULL;
	trimmed = sm_parse_trim((char *) content);
	out = strdup(trimmed);
	explicit_bzero(content, strlen((char *) content));
	xmlFree(content);
	return out;
}

/* Zero and free one field. */
static void
free_field(char **s)
{
	if (*s != NULL)
	{
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	*s = NULL;
}

/* Zero and free every field; see parse_sts.h. */
void
sm_parsed_sts_free(SmParsedSts *p)
{
	free_field(&p->access_key_id);
	free_field(&p->secret_access_key);
	free_field(&p->session_token);
	free_field(&p->assumed_role_arn);
	free_field(&p->error_code);
	free_field(&p->error_message);
	p->expiration = 0;
}

/* An ARN as shown to users: printable ASCII without spaces, else NULL. */
static char *
printable_arn(char *s)
{
	size_t		n = 0;

	if (s == NULL)
		return NULL;
	for (const char *p = s; *p; p++, n++)
	{
		if (*p <= 0x20 || *p > 0x7e)
		{
			free(s);
			return NULL;
		}
	}
	if (n == 0 || n > SM_STS_ARN_MAX)
	{
		free(s);
		return NULL;
	}
	return s;
}

/* Parse AssumeRole / AssumeRoleWithWebIdentity credentials; see parse_sts.h. */
const char *
sm_parse_sts_credentials(const char *body, size_t len, const char *action,
						 SmParsedSts *out)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	xmlNodePtr	result;
	xmlNodePtr	creds;
	char		name[64];
	char	   *exp_text;
	int			dup = 0;
	const char *reason = NULL;

	memset(out, 0, sizeof(*out));
	if (body != NULL && len > SM_STS_BODY_MAX)
		return "the answer is too large";
	doc = read_document(body, len);
	if (doc == NULL)
		return "the answer is not well-formed XML without a document type";

	root = xmlDocGetRootElement(doc);
	snprintf(name, sizeof(name), "%sResponse", action);
	if (root == NULL || root->name == NULL ||
		strcmp((const char *) root->name, name) != 0)
	{
		xmlFreeDoc(doc);
		return "the root element is not the action's response";
	}
	snprintf(name, sizeof(name), "%sResult", action);
	result = child_element(root, name, &dup);
	creds = child_element(result, "Credentials", &dup);
	if (dup)
		reason = "an element appears twice";
	else if (creds == NULL)
		reason = "the Credentials element is missing";
	else
	{
		out->access_key_id = element_text(child_element(creds, "AccessKeyId", &dup));
		out->secret_access_key = element_text(child_element(creds, "SecretAccessKey", &dup));
		out->session_token = element_text(child_element(creds, "SessionToken", &dup));
		exp_text = element_text(child_element(creds, "Expiration", &dup));
		out->assumed_role_arn =
			printable_arn(element_text(child_element(child_element(result, "AssumedRoleUser", &dup),
													 "Arn", &dup)));
		if (dup)
			reason = "an element appears twice";
		else if (out->access_key_id == NULL || out->secret_access_key == NULL ||
				 out->session_token == NULL)
			reason = "AccessKeyId, SecretAccessKey or SessionToken is missing";
		else if (!sm_parse_credential_text_ok(out->access_key_id) ||
				 !sm_parse_credential_text_ok(out->secret_access_key) ||
				 !sm_parse_credential_text_ok(out->session_token))
			reason = "AccessKeyId, SecretAccessKey or SessionToken is malformed";
		else if (exp_text == NULL || !sm_parse_iso8601(exp_text, &out->expiration))
			reason = "Expiration is missing or not an ISO 8601 time";
		free_field(&exp_text);
	}
	xmlFreeDoc(doc);
	if (reason != NULL)
		sm_parsed_sts_free(out);
	return reason;
}

/* Parse an STS ErrorResponse; see parse_sts.h. */
int
sm_parse_sts_error(const char *body, size_t len, SmParsedSts *out)
{
	xmlDocPtr	doc;
	xmlNodePtr	root;
	xmlNodePtr	error;
	char	   *code;
	char	   *message;
	int			dup = 0;
	int			rc = 0;

	memset(out, 0, sizeof(*out));
	doc = read_document(body, len);
	if (doc == NULL)
		return 0;
	root = xmlDocGetRootElement(doc);
	if (root == NULL || root->name == NULL ||
		strcmp((const char *) root->name, "ErrorResponse") != 0)
	{
		xmlFreeDoc(doc);
		return 0;
	}
	error = child_element(root, "Error", &dup);
	code = element_text(child_element(error, "Code", &dup));
	message = element_text(child_element(error, "Message", &dup));
	if (!dup && code != NULL)
	{
		out->error_code = sm_parse_sanitize_token(code, 96);
		if (out->error_code == NULL ||
			(message != NULL &&
			 (out->error_message = sm_parse_sanitize_message(message)) == NULL))
			rc = -1;
		else if (out->error_code[0] != '\0')
			rc = 1;
		if (rc != 1)
			sm_parsed_sts_free(out);
	}
	free_field(&code);
	free_field(&message);
	xmlFreeDoc(doc);
	return rc;
}
