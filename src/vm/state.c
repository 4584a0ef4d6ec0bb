#include "vm/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/error.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define TYPE_MAX	      STATE_EVENTS
#define MAX_CPUID_ENT	      1024
#define MAX_MSRS	      4096
#define MAX_XSAVE	      (1u << 20)
#define MSR_IA32_TSC	      0x10
#define MSR_HV_VP_RUNTIME     0x40000010 /* Hyper-V: the vCPU's run time */
#define MSR_HV_TIME_REF_COUNT 0x40000020 /* Hyper-V: time since the VM began */
#define LAPIC_TMCCT	      0x390	 /* timer current count: moves with time */

/* KVM structs of fixed size, saved and restored with one ioctl each. */
struct fixed_kind {
	uint32_t type;
	bool per_vcpu;
	unsigned long get, set;
	uint32_t size;
};

static const struct fixed_kind fixed_kinds[] = {
	{ STATE_MP, true, KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state) },
	{ STATE_REGS, true, KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs) },
	{ STATE_SREGS, true, KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs) },
	{ STATE_XCRS, true, KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs) },
	{ STATE_DEBUGREGS, true, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
	  sizeof(struct kvm_debugregs) },
	{ STATE_LAPIC, true, KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state) },
	{ STATE_EVENTS, true, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
	  sizeof(struct kvm_vcpu_events) },
	{ STATE_CLOCK, false, KVM_GET_CLOCK, KVM_SET_CLOCK, sizeof(struct kvm_clock_data) },
	{ STATE_PIT2, false, KVM_GET_PIT2, KVM_SET_PIT2, sizeof(struct kvm_pit_state2) },
};

static const char *const type_names[TYPE_MAX + 1] = {
	[STATE_TSC_KHZ] = "tsc-khz",
	[STATE_CLOCK] = "kvm-clock",
	[STATE_PIC_MASTER] = "pic-master",
	[STATE_PIC_SLAVE] = "pic-slave",
	[STATE_IOAPIC] = "ioapic",
	[STATE_PIT2] = "pit",
	[STATE_CPUID] = "cpuid",
	[STATE_MP] = "mp-state",
	[STATE_REGS] = "regs",
	[STATE_SREGS] = "sregs",
	[STATE_XSAVE] = "xsave",
	[STATE_XCRS] = "xcrs",
	[STATE_DEBUGREGS] = "debugregs",
	[STATE_LAPIC] = "lapic",
	[STATE_MSRS] = "msrs",
	[STATE_EVENTS] = "vcpu-events",
};

static const char *state_type_name(uint32_t type)
{
	return type <= TYPE_MAX && type_names[type] ? type_names[type] : "unknown";
}

static bool type_per_vcpu(uint32_t type)
{
	return type >= STATE_CPUID;
}

static const struct fixed_kind *fixed_kind_of(uint32_t type)
{
	for (size_t i = 0; i < sizeof(fixed_kinds) / sizeof(fixed_kinds[0]); i++)
		if (fixed_kinds[i].type == type)
			return &fixed_kinds[i];
	return NULL;
}

/* ---- writing ---- */

struct writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t sections;
};

static int put_section(struct writer *w, uint32_t type, uint32_t vcpu, const void *body,
		       uint32_t length)
{
	size_t need = w->len + sizeof(struct state_section) + ((length + 7u) & ~7u);
	struct state_section sec = { .type = type, .vcpu = vcpu, .length = length };

	if (need > w->cap) {
		size_t cap = need * 2;
		uint8_t *p = realloc(w->buf, cap);

		if (!p)
			return err_set(-ENOMEM, "out of memory saving VM state");
		memset(p + w->len, 0, cap - w->len);
		w->buf = p;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, &sec, sizeof(sec));
	memcpy(w->buf + w->len + sizeof(sec), body, length);
	w->len = need;
	w->sections++;
	return 0;
}

static int save_fixed(struct writer *w, int fd, uint32_t type, uint32_t vcpu)
{
	const struct fixed_kind *k = fixed_kind_of(type);
	uint8_t body[sizeof(struct kvm_pit_state2) + sizeof(struct kvm_lapic_state) +
		     sizeof(struct kvm_sregs)];

	memset(body, 0, k->size);
	if (ioctl(fd, k->get, body) < 0)
		return err_set(-errno, "cannot read %s of %s %u: %s", state_type_name(type),
			       vcpu == UINT32_MAX ? "the VM" : "vCPU", vcpu, strerror(errno));
	return put_section(w, type, vcpu == UINT32_MAX ? 0 : vcpu, body, k->size);
}

static int get_cpuid(int fd, struct kvm_cpuid2 *c, uint32_t nent)
{
	c->nent = nent;
	return ioctl(fd, KVM_GET_CPUID2, c) < 0 ? -errno : 0;
}

/* Kernels before 6.3 report the entry count neither on success (nent stays
 * as given) nor on E2BIG, so find the smallest buffer KVM fills. */
static int save_cpuid(struct writer *w, struct vcpu *v)
{
	size_t size = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENT * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, size);
	uint32_t lo = 1, hi = MAX_CPUID_ENT;
	int rc;

	if (!c)
		return err_set(-ENOMEM, "out of memory saving CPUID");
	rc = get_cpuid(v->fd, c, hi);
	while (rc == 0 && lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int r = get_cpuid(v->fd, c, mid);

		if (r == 0)
			hi = mid;
		else if (r == -E2BIG)
			lo = mid + 1;
		else
			rc = r;
	}
	/* Every call KVM took wrote all its entries: c holds them already,
	 * but its nent is the last size tried. */
	c->nent = lo;
	if (rc < 0)
		rc = err_set(rc, "cannot read CPUID of vCPU %u: %s", v->index, strerror(-rc));
	else
		rc = put_section(w, STATE_CPUID, v->index, c,
				 (uint32_t)(sizeof(*c) + lo * sizeof(c->entries[0])));
	free(c);
	return rc;
}

static int save_xsave(struct writer *w, struct vcpu *v)
{
	int size = v->vm->kvm->xsave_size;
	unsigned long get =
		kvm_check_cap(v->vm->kvm->fd, KVM_CAP_XSAVE2) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	void *x = calloc(1, (size_t)size);
	int rc;

	if (!x)
		return err_set(-ENOMEM, "out of memory saving XSAVE state");
	if (ioctl(v->fd, get, x) < 0)
		rc = err_set(-errno, "cannot read XSAVE state of vCPU %u: %s", v->index,
			     strerror(errno));
	else
		rc = put_section(w, STATE_XSAVE, v->index, x, (uint32_t)size);
	free(x);
	return rc;
}

static int save_msrs(struct writer *w, struct vcpu *v)
{
	const struct kvm_msr_list *list = v->vm->kvm->msrs;
	uint32_t n = list->nmsrs;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	int rc, got;

	if (!m)
		return err_set(-ENOMEM, "out of memory saving MSRs");
	m->nmsrs = n;
	for (uint32_t i = 0; i < n; i++)
		m->entries[i].index = list->indices[i];
	got = ioctl(v->fd, KVM_GET_MSRS, m);
	if (got != (int)n)
		rc = err_set(-EIO, "could read only %d of %u MSRs of vCPU %u (MSR %#x failed)", got,
			     n, v->index, got >= 0 && (uint32_t)got < n ? list->indices[got] : 0);
	else
		rc = put_section(w, STATE_MSRS, v->index, m,
				 (uint32_t)(sizeof(*m) + n * sizeof(m->entries[0])));
	free(m);
	return rc;
}

static int save_irqchip(struct writer *w, struct vm *vm, uint32_t type, uint32_t chip_id)
{
	struct kvm_irqchip chip = { .chip_id = chip_id };

	if (ioctl(vm->fd, KVM_GET_IRQCHIP, &chip) < 0)
		return err_set(-errno, "cannot read %s state: %s", state_type_name(type),
			       strerror(errno));
	return put_section(w, type, 0, &chip, sizeof(chip));
}

/* KVM_GET_MP_STATE may process pending INIT/SIPI and change other state, so
 * it comes first; the rest follows Firecracker's proven order. */
static int save_vcpu(struct writer *w, struct vcpu *v)
{
	static const uint32_t order[] = { STATE_MP,	STATE_REGS,	 STATE_SREGS, STATE_XSAVE,
					  STATE_XCRS,	STATE_DEBUGREGS, STATE_LAPIC, STATE_MSRS,
					  STATE_EVENTS, STATE_CPUID };
	int rc = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && rc == 0; i++) {
		if (order[i] == STATE_XSAVE)
			rc = save_xsave(w, v);
		else if (order[i] == STATE_MSRS)
			rc = save_msrs(w, v);
		else if (order[i] == STATE_CPUID)
			rc = save_cpuid(w, v);
		else
			rc = save_fixed(w, v->fd, order[i], v->index);
	}
	return rc;
}

static int save_vm(struct writer *w, struct vm *vm)
{
	uint64_t khz = vm->tsc_khz;
	int rc = put_section(w, STATE_TSC_KHZ, 0, &khz, sizeof(khz));

	if (rc == 0)
		rc = save_irqchip(w, vm, STATE_PIC_MASTER, KVM_IRQCHIP_PIC_MASTER);
	if (rc == 0)
		rc = save_irqchip(w, vm, STATE_PIC_SLAVE, KVM_IRQCHIP_PIC_SLAVE);
	if (rc == 0)
		rc = save_irqchip(w, vm, STATE_IOAPIC, KVM_IRQCHIP_IOAPIC);
	if (rc == 0)
		rc = save_fixed(w, vm->fd, STATE_PIT2, UINT32_MAX);
	if (rc == 0)
		rc = save_fixed(w, vm->fd, STATE_CLOCK, UINT32_MAX);
	return rc;
}

int state_save(struct vm *vm, uint8_t **blob, size_t *len)
{
	struct state_header h = { .version = STATE_VERSION, .nr_vcpus = vm->nr_vcpus };
	struct writer w = { .buf = calloc(1, 64 << 10), .len = sizeof(h), .cap = 64 << 10 };
	int rc = 0;

	if (!w.buf)
		return err_set(-ENOMEM, "out of memory saving VM state");
	for (unsigned i = 0; i < vm->nr_vcpus && rc == 0; i++)
		rc = save_vcpu(&w, vm->vcpus[i]);
	if (rc == 0)
		rc = save_vm(&w, vm);
	if (rc < 0) {
		free(w.buf);
		return rc;
	}
	memcpy(h.magic, STATE_MAGIC, sizeof(h.magic));
	h.nr_sections = w.sections;
	memcpy(w.buf, &h, sizeof(h));
	*blob = w.buf;
	*len = w.len;
	return 0;
}

/* ---- reading and validating ---- */

struct state_index {
	uint32_t nr_vcpus;
	const struct state_section *sec[TYPE_MAX + 1][VM_MAX_VCPUS];
};

static const void *body(const struct state_section *s)
{
	return s + 1;
}

static int check_length(const struct state_section *s)
{
	const struct fixed_kind *k = fixed_kind_of(s->type);
	uint32_t len = s->length, n;

	if (k)
		return len == k->size ? 0 : -1;
	switch (s->type) {
	case STATE_TSC_KHZ:
		return len == sizeof(uint64_t) ? 0 : -1;
	case STATE_PIC_MASTER:
	case STATE_PIC_SLAVE:
	case STATE_IOAPIC:
		return len == sizeof(struct kvm_irqchip) ? 0 : -1;
	case STATE_XSAVE:
		return len >= sizeof(struct kvm_xsave) && len <= MAX_XSAVE ? 0 : -1;
	case STATE_CPUID:
		if (len < sizeof(struct kvm_cpuid2))
			return -1;
		n = ((const struct kvm_cpuid2 *)body(s))->nent;
		return n <= MAX_CPUID_ENT && len == sizeof(struct kvm_cpuid2) +
							     n * sizeof(struct kvm_cpuid_entry2)
			       ? 0
			       : -1;
	case STATE_MSRS:
		if (len < sizeof(struct kvm_msrs))
			return -1;
		n = ((const struct kvm_msrs *)body(s))->nmsrs;
		return n <= MAX_MSRS && len == sizeof(struct kvm_msrs) +
							n * sizeof(struct kvm_msr_entry)
			       ? 0
			       : -1;
	}
	return -1;
}

static int index_section(struct state_index *ix, const struct state_section *s)
{
	uint32_t type = s->type & ~STATE_OPTIONAL;

	if (type > TYPE_MAX || !type_names[type]) {
		if (s->type & STATE_OPTIONAL)
			return 0;
		return err_set(-EINVAL, "VM state has unknown mandatory section type %u", s->type);
	}
	if (type_per_vcpu(type) ? s->vcpu >= ix->nr_vcpus : s->vcpu != 0)
		return err_set(-EINVAL, "VM state section %s names vCPU %u of %u",
			       state_type_name(type), s->vcpu, ix->nr_vcpus);
	if (check_length(s) < 0)
		return err_set(-EINVAL,
			       "VM state section %s of vCPU %u has a bad length (%u bytes)",
			       state_type_name(type), s->vcpu, s->length);
	if (ix->sec[type][s->vcpu])
		return err_set(-EINVAL, "VM state has section %s of vCPU %u twice",
			       state_type_name(type), s->vcpu);
	ix->sec[type][s->vcpu] = s;
	return 0;
}

static int check_complete(const struct state_index *ix)
{
	for (uint32_t t = 1; t <= TYPE_MAX; t++) {
		if (!type_names[t])
			continue;
		for (uint32_t v = 0; v < (type_per_vcpu(t) ? ix->nr_vcpus : 1); v++)
			if (!ix->sec[t][v])
				return err_set(-EINVAL, "VM state lacks section %s of vCPU %u",
					       state_type_name(t), v);
	}
	return 0;
}

/* Walk and check the blob, filling ix. The blob is untrusted: every offset
 * and length is checked before it is used. */
static int parse(const uint8_t *blob, size_t len, struct state_index *ix)
{
	struct state_header h;
	size_t off = sizeof(h);

	if (len < sizeof(h))
		return err_set(-EINVAL, "VM state is truncated (%zu bytes)", len);
	memcpy(&h, blob, sizeof(h));
	if (memcmp(h.magic, STATE_MAGIC, sizeof(h.magic)))
		return err_set(-EINVAL, "VM state has a bad magic number");
	if (h.version != STATE_VERSION)
		return err_set(-EINVAL, "VM state version %u is not supported (ferry reads %u)",
			       h.version, STATE_VERSION);
	if (h.nr_vcpus < 1 || h.nr_vcpus > VM_MAX_VCPUS)
		return err_set(-EINVAL, "VM state claims %u vCPUs", h.nr_vcpus);
	memset(ix, 0, sizeof(*ix));
	ix->nr_vcpus = h.nr_vcpus;
	for (uint32_t i = 0; i < h.nr_sections; i++) {
		const struct state_section *s = (const void *)(blob + off);
		int rc;

		if (len - off < sizeof(*s) || (off & 7))
			return err_set(-EINVAL, "VM state is truncated at section %u", i);
		/* The padding too: a short tail would leave off past len. */
		if (((s->length + 7ull) & ~7ull) > len - off - sizeof(*s))
			return err_set(-EINVAL, "VM state section %u runs past the end", i);
		rc = index_section(ix, s);
		if (rc < 0)
			return rc;
		off += sizeof(*s) + ((s->length + 7ull) & ~7ull);
	}
	if (off != len)
		return err_set(-EINVAL, "VM state has %zu trailing bytes", len - off);
	return check_complete(ix);
}

/* ---- restoring ---- */

static int set_fixed(int fd, const struct state_section *s, const char *who)
{
	const struct fixed_kind *k = fixed_kind_of(s->type);
	uint8_t copy[sizeof(struct kvm_pit_state2) + sizeof(struct kvm_lapic_state) +
		     sizeof(struct kvm_sregs)];

	memcpy(copy, body(s), k->size);
	if (s->type == STATE_CLOCK)
		((struct kvm_clock_data *)copy)->flags = 0; /* set the saved value, not realtime */
	if (ioctl(fd, k->set, copy) < 0)
		return err_set(-errno, "cannot restore %s of %s: %s", state_type_name(s->type), who,
			       strerror(errno));
	return 0;
}

static int set_variable(struct vcpu *v, const struct state_section *s, unsigned long op,
			const char *what)
{
	void *copy = malloc(s->length);
	int rc = 0, r;

	if (!copy)
		return err_set(-ENOMEM, "out of memory restoring %s", what);
	memcpy(copy, body(s), s->length);
	r = ioctl(v->fd, op, copy);
	if (r < 0)
		rc = err_set(-errno, "cannot restore %s of vCPU %u: %s", what, v->index,
			     strerror(errno));
	else if (op == KVM_SET_MSRS && r != (int)((struct kvm_msrs *)copy)->nmsrs)
		rc = err_set(-EINVAL, "vCPU %u refused MSR %#x", v->index,
			     ((struct kvm_msrs *)copy)->entries[r].index);
	free(copy);
	return rc;
}

/* CPUID first: KVM checks MSRs and XSAVE against the guest's features.
 * REGS before EVENTS: setting registers clears pending exceptions, which
 * EVENTS restores. SREGS before LAPIC: SREGS carries the APIC base. LAPIC
 * before MSRS: the TSC deadline MSR only restores with the LAPIC set up.
 * MSRS (with the TSC) after the TSC frequency is set on the VM. */
static int restore_vcpu(struct vcpu *v, const struct state_index *ix)
{
	static const uint32_t order[] = { STATE_CPUID, STATE_MP,    STATE_REGS,	     STATE_SREGS,
					  STATE_XCRS,  STATE_XSAVE, STATE_DEBUGREGS, STATE_LAPIC,
					  STATE_MSRS,  STATE_EVENTS };
	char who[32];
	int rc = 0;

	snprintf(who, sizeof(who), "vCPU %u", v->index);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && rc == 0; i++) {
		const struct state_section *s = ix->sec[order[i]][v->index];

		if (order[i] == STATE_CPUID)
			rc = set_variable(v, s, KVM_SET_CPUID2, "CPUID");
		else if (order[i] == STATE_XSAVE)
			rc = set_variable(v, s, KVM_SET_XSAVE, "XSAVE state");
		else if (order[i] == STATE_MSRS)
			rc = set_variable(v, s, KVM_SET_MSRS, "MSRs");
		else
			rc = set_fixed(v->fd, s, who);
	}
	return rc;
}

static int restore_irqchip(struct vm *vm, const struct state_section *s)
{
	struct kvm_irqchip chip;

	memcpy(&chip, body(s), sizeof(chip));
	if (ioctl(vm->fd, KVM_SET_IRQCHIP, &chip) < 0)
		return err_set(-errno, "cannot restore %s: %s", state_type_name(s->type),
			       strerror(errno));
	return 0;
}

static int restore_tsc_khz(struct vm *vm, uint64_t khz)
{
	if (khz == vm->tsc_khz)
		return 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (ioctl(vm->vcpus[i]->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
			return err_set(
				-errno,
				"cannot give the guest its TSC of %llu kHz on this host (%llu kHz): %s",
				(unsigned long long)khz, (unsigned long long)vm->tsc_khz,
				strerror(errno));
	vm->tsc_khz = khz;
	return 0;
}

int state_restore(struct vm *vm, const uint8_t *blob, size_t len)
{
	struct state_index *ix = malloc(sizeof(*ix));
	int rc;

	if (!ix)
		return err_set(-ENOMEM, "out of memory restoring VM state");
	rc = parse(blob, len, ix);
	if (rc == 0 && ix->nr_vcpus != vm->nr_vcpus)
		rc = err_set(-EINVAL, "VM state is for %u vCPUs, this VM has %u", ix->nr_vcpus,
			     vm->nr_vcpus);
	for (unsigned v = 0; rc == 0 && v < ix->nr_vcpus; v++)
		if (ix->sec[STATE_XSAVE][v]->length != (uint32_t)vm->kvm->xsave_size)
			rc = err_set(-EINVAL,
				     "VM state has a %u-byte XSAVE area, this host uses %d",
				     ix->sec[STATE_XSAVE][v]->length, vm->kvm->xsave_size);
	if (rc == 0)
		rc = restore_tsc_khz(vm, *(const uint64_t *)body(ix->sec[STATE_TSC_KHZ][0]));
	for (unsigned v = 0; rc == 0 && v < vm->nr_vcpus; v++)
		rc = restore_vcpu(vm->vcpus[v], ix);
	/* The irqchip before the PIT, which delivers through it; the clock last. */
	if (rc == 0)
		rc = restore_irqchip(vm, ix->sec[STATE_PIC_MASTER][0]);
	if (rc == 0)
		rc = restore_irqchip(vm, ix->sec[STATE_PIC_SLAVE][0]);
	if (rc == 0)
		rc = restore_irqchip(vm, ix->sec[STATE_IOAPIC][0]);
	if (rc == 0)
		rc = set_fixed(vm->fd, ix->sec[STATE_PIT2][0], "the VM");
	if (rc == 0)
		rc = set_fixed(vm->fd, ix->sec[STATE_CLOCK][0], "the VM");
	free(ix);
	return rc;
}

/* ---- comparing ---- */

struct diff_out {
	char *buf;
	size_t len, used;
	int count;
};

static void note(struct diff_out *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct diff_out *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	d->count++;
	if (!d->buf || d->used + 1 >= d->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(d->buf + d->used, d->len - d->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->used += (size_t)n < d->len - d->used ? (size_t)n : d->len - d->used - 1;
}

static const char *const reg_names[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
					 "rsp", "rbp", "r8",  "r9",  "r10", "r11",
					 "r12", "r13", "r14", "r15", "rip", "rflags" };

/* Compare [from, to) of two bodies as 64-bit fields (bytes at the tail). */
static void diff_bytes(struct diff_out *d, const char *what, uint32_t vcpu, const uint8_t *a,
		       const uint8_t *b, size_t from, size_t to)
{
	for (size_t off = from; off < to;) {
		size_t n = to - off >= 8 ? 8 : 1;

		if (memcmp(a + off, b + off, n)) {
			if (!strcmp(what, "regs") && off / 8 < 18)
				note(d, "vCPU %u %s differs; ", vcpu, reg_names[off / 8]);
			else
				note(d, "vCPU %u %s differs at byte %zu; ", vcpu, what, off);
		}
		off += n;
	}
}

/* Counters that run on their own: two saves never agree on them. */
static bool msr_is_clock(uint32_t index)
{
	return index == MSR_IA32_TSC || index == MSR_HV_VP_RUNTIME ||
	       index == MSR_HV_TIME_REF_COUNT;
}

static void diff_msrs(struct diff_out *d, uint32_t vcpu, const struct kvm_msrs *a,
		      const struct kvm_msrs *b)
{
	if (a->nmsrs != b->nmsrs) {
		note(d, "vCPU %u saves %u MSRs in one and %u in the other; ", vcpu, a->nmsrs,
		     b->nmsrs);
		return;
	}
	for (uint32_t i = 0; i < a->nmsrs; i++) {
		const struct kvm_msr_entry *x = &a->entries[i], *y = &b->entries[i];

		if (x->index != y->index)
			note(d, "vCPU %u MSR list differs at entry %u; ", vcpu, i);
		else if (x->data != y->data && !msr_is_clock(x->index))
			note(d, "vCPU %u MSR %#x differs (%#llx vs %#llx); ", vcpu, x->index,
			     (unsigned long long)x->data, (unsigned long long)y->data);
	}
}

static void diff_pit(struct diff_out *d, const struct kvm_pit_state2 *a,
		     const struct kvm_pit_state2 *b)
{
	for (int c = 0; c < 3; c++)
		diff_bytes(d, "pit channel", 0, (const uint8_t *)&a->channels[c],
			   (const uint8_t *)&b->channels[c], 0,
			   offsetof(struct kvm_pit_channel_state, count_load_time));
	if (a->flags != b->flags)
		note(d, "pit flags differ; ");
}

static void diff_section(struct diff_out *d, const struct state_section *x,
			 const struct state_section *y)
{
	const uint8_t *a = body(x), *b = body(y);
	const char *name = state_type_name(x->type);

	if (x->length != y->length) {
		note(d, "vCPU %u %s has %u bytes in one and %u in the other; ", x->vcpu, name,
		     x->length, y->length);
		return;
	}
	switch (x->type) {
	case STATE_CLOCK:
		return; /* the KVM clock moves with time by design */
	case STATE_MSRS:
		diff_msrs(d, x->vcpu, body(x), body(y));
		return;
	case STATE_PIT2:
		diff_pit(d, body(x), body(y));
		return;
	case STATE_LAPIC:
		diff_bytes(d, name, x->vcpu, a, b, 0, LAPIC_TMCCT);
		diff_bytes(d, name, x->vcpu, a, b, LAPIC_TMCCT + 4, x->length);
		return;
	default:
		diff_bytes(d, name, x->vcpu, a, b, 0, x->length);
	}
}

int state_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, char *out, size_t len)
{
	struct state_index *ia = malloc(sizeof(*ia)), *ib = malloc(sizeof(*ib));
	struct diff_out d = { .buf = out, .len = len };
	int rc = -ENOMEM;

	if (out && len)
		out[0] = '\0';
	if (!ia || !ib)
		goto out_free;
	rc = parse(a, alen, ia);
	if (rc == 0)
		rc = parse(b, blen, ib);
	if (rc < 0)
		goto out_free;
	if (ia->nr_vcpus != ib->nr_vcpus)
		note(&d, "%u vCPUs vs %u; ", ia->nr_vcpus, ib->nr_vcpus);
	for (uint32_t t = 1; t <= TYPE_MAX; t++)
		for (uint32_t v = 0; v < ia->nr_vcpus && v < ib->nr_vcpus; v++)
			if (ia->sec[t][v] && ib->sec[t][v])
				diff_section(&d, ia->sec[t][v], ib->sec[t][v]);
	rc = d.count;
out_free:
	free(ia);
	free(ib);
	return rc;
}
