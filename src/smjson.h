/*
 * smjson.h
 *		jansson, made to coexist with PostgreSQL's function prototypes.
 *
 * PostgreSQL's utils/fmgrprotos.h (pulled in by utils/builtins.h) declares
 * the SQL function json_object(), and jansson declares its own json_object().
 * Include this header right after "postgres.h", before any other PostgreSQL
 * header: it renames the SQL function's prototype (which secretsmgr never
 * calls) so both headers compile in one file.
 *
 * The clash goes further than the compiler: the postgres executable exports
 * json_object, and the dynamic linker binds our module's calls to the first
 * definition in the global scope, which is PostgreSQL's.  So no file of
 * secretsmgr calls jansson's json_object(): the macro below makes an empty
 * object through json_pack(), whose internal call stays inside libjansson.
 */
#ifndef SECRETSMGR_SMJSON_H
#define SECRETSMGR_SMJSON_H

#ifdef FMGRPROTOS_H
#error "include smjson.h before utils/builtins.h and utils/fmgrprotos.h"
#endif

#define json_object pg_sql_json_object
#include "utils/fmgrprotos.h"
#undef json_object

#include <jansson.h>

#define json_object() json_pack("{}")

#endif							/* SECRETSMGR_SMJSON_H */
