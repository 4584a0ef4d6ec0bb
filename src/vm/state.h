/* The machine state of a VM, everything but RAM, as one versioned blob:
 * per vCPU the CPUID, registers, special registers, XSAVE area, XCRs,
 * restorable MSRs (TSC included), LAPIC, pending events, MP state and debug
 * registers; per VM the PIC and IOAPIC, the PIT and the KVM clock.
 *
 * Layout (little-endian, docs/state.md): a header, then sections of
 * { u32 type, u32 vcpu, u32 length, u32 reserved } + body padded to 8
 * bytes. Bodies are the KVM x86 ABI structs. A restore validates every
 * header, length and index before it touches the VM. */
#ifndef FERRY_VM_STATE_H
#define FERRY_VM_STATE_H

#include <stddef.h>
#include <stdint.h>

#define STATE_MAGIC   "FERRYST1"
#define STATE_VERSION 1

/* Section types. Types with STATE_OPTIONAL set may be skipped by a reader
 * that does not know them; any other unknown type fails the restore. */
enum state_type {
	STATE_TSC_KHZ = 1, /* u64 */
	STATE_CLOCK = 2,   /* struct kvm_clock_data */
	STATE_PIC_MASTER = 3,
	STATE_PIC_SLAVE = 4,
	STATE_IOAPIC = 5, /* struct kvm_irqchip, each */
	STATE_PIT2 = 6,	  /* struct kvm_pit_state2 */
	STATE_CPUID = 16, /* struct kvm_cpuid2 + entries */
	STATE_MP = 17,
	STATE_REGS = 18,
	STATE_SREGS = 19,
	STATE_XSAVE = 20, /* KVM_CAP_XSAVE2 bytes */
	STATE_XCRS = 21,
	STATE_DEBUGREGS = 22,
	STATE_LAPIC = 23,
	STATE_MSRS = 24, /* struct kvm_msrs + entries */
	STATE_EVENTS = 25,
};
#define STATE_OPTIONAL 0x80000000u

struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t nr_vcpus;
	uint32_t nr_sections;
	uint32_t reserved;
};

struct state_section {
	uint32_t type;
	uint32_t vcpu; /* 0 for VM-wide sections */
	uint32_t length;
	uint32_t reserved;
};

_Static_assert(sizeof(struct state_header) == 24, "state header is 24 bytes");
_Static_assert(sizeof(struct state_section) == 16, "section header is 16 bytes");

struct vm;

/* Save the state of vm, whose vCPUs must be paused or not yet started, into
 * a malloc'd blob. Returns 0 or -errno with err_msg(). */
int state_save(struct vm *vm, uint8_t **blob, size_t *len);
/* Load a blob into vm, a fresh VM of the same shape whose vCPUs have not run
 * yet or are paused. Every field is validated first; a bad blob changes
 * nothing and returns -EINVAL with err_msg() saying what is wrong. */
int state_restore(struct vm *vm, const uint8_t *blob, size_t len);
/* Compare two blobs field by field, ignoring the fields that move with time
 * (TSC, LAPIC timer count, PIT load time, KVM clock). Writes up to len bytes
 * of description of the differences to out. Returns the number of differing
 * fields, or -EINVAL if either blob is malformed. */
int state_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, char *out, size_t len);

#endif
