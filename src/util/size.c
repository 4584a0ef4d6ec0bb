#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int suffix_shift(const char *s, unsigned *shift)
{
	static const char units[] = "KMGT";
	const char *u;

	if (*s == '\0') {
		*shift = 0;
		return 0;
	}
	u = strchr(units, toupper((unsigned char)*s));
	if (!u)
		return -EINVAL;
	*shift = 10 * (unsigned)(u - units + 1);
	s++;
	if (!strcmp(s, "") || !strcmp(s, "B") || !strcmp(s, "iB"))
		return 0;
	return -EINVAL;
}

int size_parse(const char *text, uint64_t *bytes)
{
	unsigned long long value;
	unsigned shift;
	char *end;

	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || suffix_shift(end, &shift) < 0)
		return -EINVAL;
	if (shift && value > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)value << shift;
	return 0;
}

char *size_format(uint64_t bytes, char *buf, unsigned len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, units[i]);
	return buf;
}

int rate_parse(const char *text, uint64_t *bytes_per_s)
{
	static const char units[] = "kmgt";
	size_t len = text ? strlen(text) : 0;
	unsigned long long value;
	uint64_t scale = 1;
	char *end;

	if (len < 4 || strcmp(text + len - 3, "bit"))
		return size_parse(text, bytes_per_s);
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	if (end != text + len - 3) {
		const char *u = strchr(units, tolower((unsigned char)*end));

		if (!u || *end == '\0' || end + 1 != text + len - 3)
			return -EINVAL;
		for (long i = 0; i <= u - units; i++)
			scale *= 1000;
	}
	if (value > UINT64_MAX / scale)
		return -EINVAL;
	*bytes_per_s = value * scale / 8;
	return 0;
}
