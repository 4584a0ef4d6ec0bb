#include "migration/send/converge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"
#include "util/log.h"
#include "vm/dirty.h"
#include "vm/throttle.h"
#include "vm/vm.h"

#define MIB (1024.0 * 1024.0)

static const char *const names[] = {
	[CONVERGE_AUTO] = "auto", [CONVERGE_THROTTLE] = "throttle",
	[CONVERGE_SDPS] = "sdps", [CONVERGE_DIRTY_LIMIT] = "dirty-limit",
	[CONVERGE_NONE] = "none",
};

const char *converge_name(enum converge_strategy s)
{
	return s <= CONVERGE_NONE ? names[s] : "unknown";
}

int converge_parse(const char *name, enum converge_strategy *out)
{
	for (unsigned i = 0; i <= CONVERGE_NONE; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum converge_strategy)i;
			return 0;
		}
	return err_set(
		-EINVAL,
		"converge strategy '%s' is unknown: use auto, throttle, sdps, dirty-limit or none",
		name);
}

int converge_check(struct vm *vm, const struct mig_params *p)
{
	if (p->converge == CONVERGE_DIRTY_LIMIT && !dirty_per_vcpu(vm->dirty))
		return err_set(
			-EINVAL,
			"dirty-limit needs each vCPU's dirty rate, which only the dirty ring gives: run the VM with --dirty-backend ring");
	return 0;
}

int converge_start(struct converge *c, struct vm *vm, const struct mig_params *p)
{
	*c = (struct converge){ .vm = vm };
	if (converge_check(vm, p) < 0)
		return -EINVAL;
	c->active = p->converge == CONVERGE_AUTO ? CONVERGE_NONE : p->converge;
	c->stats.asked = p->converge;
	c->stats.active = c->active;
	c->stats.nr_vcpus = vm->nr_vcpus;
	for (unsigned i = 0; i < vm->nr_vcpus && dirty_per_vcpu(vm->dirty); i++)
		c->vcpu_pages[i] = dirty_vcpu_pages(vm->dirty, i);
	return 0;
}

void converge_stop(struct converge *c)
{
	throttle_stop(c->throttle);
	c->throttle = NULL;
	memset(c->pct, 0, sizeof(c->pct));
	c->stats.throttle_pct_now = 0;
}

static void decide(struct converge *c, uint32_t round, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void decide(struct converge *c, uint32_t round, const char *fmt, ...)
{
	unsigned slot = c->stats.decisions++ % CONVERGE_LOG;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->stats.log[slot].text, sizeof(c->stats.log[slot].text), fmt, ap);
	va_end(ap);
	c->stats.log[slot].round = round;
	log_info("converge: round %u: %s", round, c->stats.log[slot].text);
}

/* Each vCPU's dirty rate in bytes/s had it not been throttled: the measured
 * rate split by each vCPU's share of the pages the ring saw this round (or
 * evenly without the ring). Over a whole round, so that a vCPU throttled to
 * a few runs per second is not measured in a window it happened to sleep. */
static void unthrottled_rates(struct converge *c, const struct meter_reading *in, double *r0)
{
	unsigned n = c->vm->nr_vcpus;
	uint64_t delta[VM_MAX_VCPUS], sum = 0;
	double rate = in->dirty_rate_pps * in->bytes_per_page;

	for (unsigned i = 0; i < n; i++) {
		uint64_t now = dirty_per_vcpu(c->vm->dirty) ? dirty_vcpu_pages(c->vm->dirty, i) : 0;

		delta[i] = now - c->vcpu_pages[i];
		c->vcpu_pages[i] = now;
		sum += delta[i];
	}
	for (unsigned i = 0; i < n; i++) {
		double share = sum ? (double)delta[i] / (double)sum : 1.0 / n;

		r0[i] = rate * share / (1.0 - c->pct[i] / 100.0);
	}
}

/* Max-min fair shares of budget: a vCPU that needs less than an even split
 * of what is left keeps its rate; the rest share the remainder. */
static void fair_quota(const double *r0, unsigned n, double budget, double *quota)
{
	bool done[VM_MAX_VCPUS] = { false };

	for (unsigned left = n; left;) {
		double even = budget / left;
		bool any = false;

		for (unsigned i = 0; i < n; i++)
			if (!done[i] && r0[i] <= even) {
				quota[i] = r0[i];
				budget -= r0[i];
				done[i] = any = true;
				left--;
			}
		if (!any) {
			for (unsigned i = 0; i < n; i++)
				if (!done[i])
					quota[i] = even;
			return;
		}
	}
}

/* The throttle that slows r0 down to quota. */
static unsigned pct_for(double r0, double quota, unsigned max)
{
	double p = r0 > quota && r0 > 0 ? 100.0 * (1.0 - quota / r0) : 0;

	return p >= max ? max : (unsigned)(p + 0.999);
}

static int apply(struct converge *c, const unsigned *pct)
{
	int rc;

	if (!c->throttle) {
		rc = throttle_start(c->vm, &c->throttle);
		if (rc < 0)
			return rc;
	}
	c->stats.throttle_pct_now = 0;
	for (unsigned i = 0; i < c->vm->nr_vcpus; i++) {
		c->pct[i] = pct[i];
		throttle_set(c->throttle, i, pct[i]);
		if (pct[i] > c->stats.throttle_pct_now)
			c->stats.throttle_pct_now = pct[i];
		if (pct[i] > c->stats.vcpu_pct_max[i])
			c->stats.vcpu_pct_max[i] = (uint8_t)pct[i];
	}
	if (c->stats.throttle_pct_now > c->stats.throttle_pct_max)
		c->stats.throttle_pct_max = c->stats.throttle_pct_now;
	return 0;
}

static void describe(const unsigned *pct, unsigned n, char *buf, size_t len)
{
	size_t at = 0;

	for (unsigned i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%u%%", i ? " " : "", pct[i]);
}

void converge_plan(enum converge_strategy s, const struct mig_params *p, unsigned n,
		   const double *r0, const unsigned *now, double target, unsigned *pct)
{
	double total = 0, quota[VM_MAX_VCPUS];

	for (unsigned i = 0; i < n; i++)
		total += r0[i];
	switch (s) {
	case CONVERGE_THROTTLE: {
		unsigned next = now[0] ? now[0] + p->throttle_increment : p->throttle_initial;

		for (unsigned i = 0; i < n; i++)
			pct[i] = next < p->throttle_max ? next : p->throttle_max;
		break;
	}
	case CONVERGE_SDPS:
		for (unsigned i = 0; i < n; i++)
			pct[i] = pct_for(total, target, p->throttle_max);
		break;
	case CONVERGE_DIRTY_LIMIT:
		fair_quota(r0, n, target, quota);
		for (unsigned i = 0; i < n; i++)
			pct[i] = pct_for(r0[i], quota[i], p->throttle_max);
		break;
	default:
		memset(pct, 0, n * sizeof(*pct));
	}
}

enum converge_strategy converge_choose(bool per_vcpu, unsigned n, const double *r0, double target)
{
	for (unsigned i = 0; i < n && per_vcpu; i++)
		if (r0[i] < target / n)
			return CONVERGE_DIRTY_LIMIT;
	return CONVERGE_SDPS;
}

static unsigned max_pct(const unsigned *pct, unsigned n)
{
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++)
		m = pct[i] > m ? pct[i] : m;
	return m;
}

/* Ease off only after a round long enough to measure, and by at most half a
 * step: releasing all at once on a noisy measurement would undo the rounds
 * it took to get here. */
static void ease_gently(const struct converge *c, const struct meter_reading *in, unsigned *pct)
{
	for (unsigned i = 0; i < c->vm->nr_vcpus; i++) {
		unsigned floor =
			in->round_s < CONVERGE_EASE_MIN_ROUND_S ? c->pct[i] : c->pct[i] / 2;

		pct[i] = pct[i] < floor ? floor : pct[i];
	}
}

void converge_outlook(const struct converge *c, const struct mig_params *p,
		      struct converge_outlook *out)
{
	unsigned top = max_pct(c->pct, c->vm->nr_vcpus);

	if (c->active == CONVERGE_NONE) {
		/* auto has not acted yet: it still can. */
		out->exhausted = c->stats.asked != CONVERGE_AUTO;
		out->slowed = false;
		snprintf(out->why, sizeof(out->why),
			 "--converge %s does not slow the guest (try --converge auto%s)",
			 converge_name(c->stats.asked),
			 p->xbzrle_cache_bytes ? ", or a larger --xbzrle cache"
					       : ", or --xbzrle if it changes few bytes per page");
		return;
	}
	out->exhausted = top >= p->throttle_max;
	out->slowed = top > 0;
	snprintf(
		out->why, sizeof(out->why),
		"%s at %u%% (the maximum) still leaves more than the link carries (unthrottled the guest would dirty %.0f MiB/s)",
		converge_name(c->active), top, c->unthrottled_bps / MIB);
}

bool converge_early_postcopy(struct converge *c, const struct mig_params *p, double dirty_bps,
			     double link_bps, double secs)
{
	if (!p->postcopy || c->stats.asked != CONVERGE_AUTO || link_bps <= 0 ||
	    dirty_bps <= CONVERGE_TARGET * link_bps)
		return false;
	decide(c, 0,
	       "%.1f s into round 0: dirty %.1f MiB/s against a link of %.1f MiB/s: post-copy",
	       secs, dirty_bps / MIB, link_bps / MIB);
	return true;
}

int converge_after_round(struct converge *c, const struct mig_params *p,
			 const struct meter_reading *r, uint32_t round)
{
	unsigned n = c->vm->nr_vcpus, pct[VM_MAX_VCPUS];
	double r0[VM_MAX_VCPUS], rate = meter_dirty_bps(r);
	double bw = r->bandwidth_bps, target = CONVERGE_TARGET * bw, total = 0;
	char was[256], now[256];

	/* With XBZRLE, round 0 cannot tell what a page sent again costs (a
	 * delta, not the page): slowing the guest on its raw rate would throttle
	 * a guest that deltas carry easily. The first delta round tells. */
	if (bw <= 0 || (round == 0 && p->xbzrle_cache_bytes))
		return 0;
	unthrottled_rates(c, r, r0);
	for (unsigned i = 0; i < n; i++)
		total += r0[i];
	c->unthrottled_bps = total;
	if (c->active == CONVERGE_NONE && c->stats.asked == CONVERGE_AUTO && rate > target &&
	    p->postcopy) {
		decide(c, round,
		       "dirty %.1f MiB/s (%.1f unthrottled) against a link of %.1f MiB/s at %.0f bytes/page: post-copy",
		       rate / MIB, total / MIB, bw / MIB, r->bytes_per_page);
		return CONVERGE_POSTCOPY;
	}
	if (c->active == CONVERGE_NONE && c->stats.asked == CONVERGE_AUTO && rate > target) {
		c->active = c->stats.active =
			converge_choose(dirty_per_vcpu(c->vm->dirty), n, r0, target);
		decide(c, round,
		       "dirty %.1f MiB/s (%.1f unthrottled) against a link of %.1f MiB/s at %.0f bytes/page: %s",
		       rate / MIB, total / MIB, bw / MIB, r->bytes_per_page,
		       converge_name(c->active));
	}
	if (c->active == CONVERGE_NONE || (c->active == CONVERGE_THROTTLE && rate <= target))
		return 0;
	converge_plan(c->active, p, n, r0, c->pct, target, pct);
	ease_gently(c, r, pct);
	if (!memcmp(pct, c->pct, n * sizeof(*pct)))
		return 0;
	describe(c->pct, n, was, sizeof(was));
	describe(pct, n, now, sizeof(now));
	decide(c, round, "dirty %.1f MiB/s (%.1f unthrottled), link %.1f MiB/s: %s %s -> %s",
	       rate / MIB, total / MIB, bw / MIB, converge_name(c->active), was, now);
	return apply(c, pct);
}
