/* Fuzz target: the parsers of what an operator types or a control client
 * sends as text: URIs, sizes, rates, memory backends, compression and
 * convergence names. The first byte picks the parser; the rest is the
 * text. What parses must make sense (a URI's parts end in their fields,
 * only a backend's own name names it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migration/migration.h"
#include "migration/send/converge.h"
#include "transport/uri.h"
#include "util/size.h"
#include "vm/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(uint8_t which, const char *text)
{
	struct uri u = { 0 };
	uint64_t n;
	enum mem_backend b;
	struct mig_compress mc;
	enum converge_strategy cs;

	switch (which % 6) {
	case 0:
		if (uri_parse(text, &u) == 0 &&
		    (strnlen(u.host, sizeof(u.host)) == sizeof(u.host) ||
		     strnlen(u.port, sizeof(u.port)) == sizeof(u.port) ||
		     strnlen(u.path, sizeof(u.path)) == sizeof(u.path)))
			abort(); /* every part ends within its field */
		break;
	case 1:
		size_parse(text, &n);
		break;
	case 2:
		rate_parse(text, &n);
		break;
	case 3:
		if (mem_backend_parse(text, &b) == 0 && strcmp(mem_backend_name(b), text))
			abort(); /* only the names parse */
		break;
	case 4:
		mig_compress_parse(text, &mc);
		break;
	default:
		converge_parse(text, &cs);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || !(text = malloc(size)))
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	parse(data[0], text);
	free(text);
	return 0;
}
