#include "vm/loader.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "guest/abi.h"
#include "util/error.h"
#include "vm/vcpu.h"
#include "vm/vm.h"
#include "vm/workload.h"

/* vm/ sizes VMs without the guest ABI; they must agree with it. */
_Static_assert(VM_MAX_VCPUS == FERRY_MAX_VCPUS, "the status area has a slot per vCPU");
_Static_assert(VM_MIN_MEM >= FERRY_MIN_MEM, "the guest's layout fits the smallest VM");

/* x86 control bits ferry sets; named here rather than pulled from kernel headers. */
#define CR0_PE	       (1ull << 0)
#define CR0_MP	       (1ull << 1)
#define CR0_ET	       (1ull << 4)
#define CR0_NE	       (1ull << 5)
#define CR0_WP	       (1ull << 16)
#define CR0_AM	       (1ull << 18)
#define CR0_PG	       (1ull << 31)
#define CR4_PAE	       (1ull << 5)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define EFER_SCE       (1ull << 0)
#define EFER_LME       (1ull << 8)
#define EFER_LMA       (1ull << 10)
#define EFER_NXE       (1ull << 11)
#define RFLAGS_IOPL3   (3ull << 12)
#define RFLAGS_FIXED   (1ull << 1)

/* Page table entry bits: present, writable, user, accessed, dirty, 2 MiB. The
 * accessed and dirty bits are pre-set so the CPU never writes the tables. */
#define PTE_P	  (1ull << 0)
#define PTE_W	  (1ull << 1)
#define PTE_U	  (1ull << 2)
#define PTE_A	  (1ull << 5)
#define PTE_D	  (1ull << 6)
#define PTE_PS	  (1ull << 7)
#define PTE_TABLE (PTE_P | PTE_W | PTE_U | PTE_A)

#define SEL_CODE64_USER	 (0x18 | 3)
#define SEL_DATA_USER	 (0x20 | 3)
#define SEL_TSS		 0x28
#define TSS_IST1	 0x24
#define TSS_IOMAP_OFFSET 0x68
#define TSS_LIMIT	 (TSS_IOMAP_OFFSET + 8192) /* bitmap for all 65536 ports, then 0xff */

int loader_check_elf(const void *image, size_t len, uint64_t *entry)
{
	const Elf64_Ehdr *eh = image;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_type != ET_EXEC)
		return err_set(-ENOEXEC, "guest image is not an x86-64 ELF64 executable");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
	    eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr))
		return err_set(-ENOEXEC, "guest image program headers lie outside the file");
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)image + eh->e_phoff) + i;

		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > len ||
		    ph->p_filesz > len - ph->p_offset || ph->p_paddr < FERRY_IMAGE_GPA ||
		    ph->p_memsz > FERRY_IMAGE_END - FERRY_IMAGE_GPA ||
		    ph->p_paddr - FERRY_IMAGE_GPA > FERRY_IMAGE_END - FERRY_IMAGE_GPA - ph->p_memsz)
			return err_set(-ENOEXEC,
				       "guest image segment %u lies outside [%#llx, %#llx)", i,
				       FERRY_IMAGE_GPA, FERRY_IMAGE_END);
	}
	if (eh->e_entry < FERRY_IMAGE_GPA || eh->e_entry >= FERRY_IMAGE_END)
		return err_set(-ENOEXEC, "guest image entry point %#llx is outside the image",
			       (unsigned long long)eh->e_entry);
	*entry = eh->e_entry;
	return 0;
}

static int load_segments(struct guest_mem *mem, const void *image)
{
	const Elf64_Ehdr *eh = image;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)image + eh->e_phoff) + i;
		uint8_t *dst;

		if (ph->p_type != PT_LOAD)
			continue;
		dst = mem_host(mem, ph->p_paddr, ph->p_memsz);
		memcpy(dst, (const char *)image + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	return 0;
}

/* Identity map all of RAM with 2 MiB pages: PML4 -> one PDPT -> one PD per GiB. */
static int build_page_tables(struct guest_mem *mem)
{
	uint64_t gib = (mem->size + (1ull << 30) - 1) >> 30;
	uint64_t *pml4 = mem_host(mem, FERRY_PT_GPA, FERRY_PAGE_SIZE);
	uint64_t *pdpt = mem_host(mem, FERRY_PT_GPA + FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
	uint64_t pd_gpa = FERRY_PT_GPA + 2 * FERRY_PAGE_SIZE;

	if (pd_gpa + gib * FERRY_PAGE_SIZE > FERRY_PT_END || gib > 512)
		return err_set(-EINVAL,
			       "guest memory too large for ferry's page tables (max %llu GiB)",
			       (FERRY_PT_END - pd_gpa) / FERRY_PAGE_SIZE);
	memset(pml4, 0, FERRY_PAGE_SIZE);
	memset(pdpt, 0, FERRY_PAGE_SIZE);
	pml4[0] = (FERRY_PT_GPA + FERRY_PAGE_SIZE) | PTE_TABLE;
	for (uint64_t g = 0; g < gib; g++) {
		uint64_t *pd = mem_host(mem, pd_gpa + g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);

		pdpt[g] = (pd_gpa + g * FERRY_PAGE_SIZE) | PTE_TABLE;
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t gpa = (g << 30) | (i << 21);

			pd[i] = gpa < mem->size ? gpa | PTE_TABLE | PTE_D | PTE_PS : 0;
		}
	}
	return 0;
}

static uint64_t segment_descriptor(uint64_t flags_type)
{
	/* base 0, limit 0xfffff, granularity 4 KiB */
	return 0x000f00000000ffffull | flags_type << 40;
}

static void open_port(uint8_t *iomap, unsigned port, unsigned width)
{
	for (unsigned p = port; p < port + width; p++)
		iomap[p / 8] &= (uint8_t) ~(1u << (p % 8));
}

/* GDT: null, kernel code/data (unused, kept conventional), user code64,
 * user data, and a 64-bit TSS whose I/O bitmap opens the ferry ports. */
static void build_gdt_tss(struct guest_mem *mem)
{
	uint64_t *gdt = mem_host(mem, FERRY_GDT_GPA, FERRY_PAGE_SIZE);
	uint8_t *tss = mem_host(mem, FERRY_TSS_GPA, 3 * FERRY_PAGE_SIZE);
	uint64_t base = FERRY_TSS_GPA, limit = TSS_LIMIT;

	memset(gdt, 0, FERRY_PAGE_SIZE);
	gdt[1] = segment_descriptor(0xa09b); /* code64, DPL 0: P S type=0xb, L G */
	gdt[2] = segment_descriptor(0xc093); /* data, DPL 0 */
	gdt[3] = segment_descriptor(0xa0fb); /* code64, DPL 3 */
	gdt[4] = segment_descriptor(0xc0f3); /* data, DPL 3 */
	gdt[5] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x8bull << 40 |
		 ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[6] = base >> 32;

	memset(tss, 0, 3 * FERRY_PAGE_SIZE);
	*(uint16_t *)(tss + 0x66) = TSS_IOMAP_OFFSET;
	/* A clear bit allows the port: deny all, then open ours. An N-byte
	 * access checks N bits, so the dword call port opens four. */
	memset(tss + TSS_IOMAP_OFFSET, 0xff, 8192 + 1);
	open_port(tss + TSS_IOMAP_OFFSET, FERRY_PORT_CONSOLE, 1);
	open_port(tss + TSS_IOMAP_OFFSET, FERRY_PORT_CALL, 4);
}

/* The IDT: every vector the CPU raises goes to the guest's stub for it
 * (guest/abi.h), through an interrupt gate into ring 3's own code segment,
 * so no privilege changes; a double fault switches to its own stack (IST
 * 1), in case the stack in use is what failed. */
static void build_idt(struct guest_mem *mem)
{
	uint64_t *idt = mem_host(mem, FERRY_IDT_GPA, FERRY_PAGE_SIZE);
	uint8_t *tss = mem_host(mem, FERRY_TSS_GPA, FERRY_PAGE_SIZE);

	memset(idt, 0, FERRY_PAGE_SIZE);
	for (uint64_t v = 0; v < FERRY_FAULT_VECTORS; v++) {
		uint64_t at = FERRY_FAULT_STUBS_GPA + v * FERRY_FAULT_STUB_SIZE;
		uint64_t ist = v == 8 ? 1 : 0;

		/* offset 15:0, selector, IST, type 0xe (interrupt gate) with P
		 * and DPL 3, offset 31:16; then offset 63:32 */
		idt[2 * v] = (at & 0xffff) | (uint64_t)SEL_CODE64_USER << 16 | ist << 32 |
			     0xeeull << 40 | (at >> 16 & 0xffff) << 48;
		idt[2 * v + 1] = at >> 32;
	}
	*(uint64_t *)(tss + TSS_IST1) = FERRY_FAULT_STACK_GPA + FERRY_PAGE_SIZE;
}

static struct kvm_segment user_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 3,
		.db = code ? 0 : 1,
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

static int setup_sregs(struct vcpu *vcpu)
{
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return err_set(-errno, "KVM_GET_SREGS: %s", strerror(errno));
	s.cs = user_segment(SEL_CODE64_USER, 0xb, true);
	s.ds = s.es = s.fs = s.gs = s.ss = user_segment(SEL_DATA_USER, 0x3, false);
	s.tr = (struct kvm_segment){ .base = FERRY_TSS_GPA,
				     .limit = TSS_LIMIT,
				     .selector = SEL_TSS,
				     .type = 0xb,
				     .present = 1 };
	s.ldt = (struct kvm_segment){ .type = 0x2, .present = 1, .limit = 0xffff };
	s.gdt.base = FERRY_GDT_GPA;
	s.gdt.limit = 7 * 8 - 1;
	s.idt.base = FERRY_IDT_GPA;
	s.idt.limit = FERRY_FAULT_VECTORS * 16 - 1;
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	s.cr3 = FERRY_PT_GPA;
	s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
	s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0)
		return err_set(-errno, "cannot enter long mode on vCPU %u: %s", vcpu->index,
			       strerror(errno));
	return 0;
}

/* XCR0 = x87 | SSE | AVX, so the guest may use vector registers and the
 * XSAVE state that migrates is not trivially empty. */
static int setup_xcr0(struct vcpu *vcpu)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 0x7 } } };

	if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0)
		return err_set(-errno, "cannot set XCR0 on vCPU %u: %s", vcpu->index,
			       strerror(errno));
	return 0;
}

static int setup_vcpu(struct vcpu *vcpu, uint64_t entry)
{
	struct kvm_regs regs = {
		.rip = entry,
		.rsp = FERRY_STACKS_GPA + (vcpu->index + 1) * FERRY_STACK_SIZE,
		.rdi = vcpu->index,
		.rflags = RFLAGS_FIXED | RFLAGS_IOPL3,
	};
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	/* With the in-kernel LAPIC, every vCPU but the first waits for a SIPI
	 * that ferry never sends: make them all runnable. */
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	int rc = setup_sregs(vcpu);

	if (rc < 0)
		return rc;
	rc = setup_xcr0(vcpu);
	if (rc < 0)
		return rc;
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return err_set(-errno, "KVM_SET_FPU: %s", strerror(errno));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return err_set(-errno, "KVM_SET_REGS: %s", strerror(errno));
	if (ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0)
		return err_set(-errno, "KVM_SET_MP_STATE: %s", strerror(errno));
	return 0;
}

static int write_params(struct vm *vm, const struct ferry_workload_args *args)
{
	struct ferry_params p = {
		.magic = FERRY_PARAMS_MAGIC,
		.version = FERRY_PARAMS_VERSION,
		.vcpus = vm->nr_vcpus,
		.mem_bytes = vm->mem.size,
		.tsc_khz = vm->tsc_khz,
		.wl = *args,
	};

	return vm_write(vm, FERRY_PARAMS_GPA, &p, sizeof(p));
}

int loader_load(struct vm *vm, const void *image, size_t len,
		const struct ferry_workload_args *args)
{
	uint64_t entry;
	int rc = loader_check_elf(image, len, &entry);

	if (rc < 0)
		return rc;
	if (vm->nr_vcpus * FERRY_STACK_SIZE > FERRY_HEAP_GPA - FERRY_STACKS_GPA)
		return err_set(-EINVAL, "too many vCPUs for the guest stack area");
	load_segments(&vm->mem, image);
	rc = build_page_tables(&vm->mem);
	if (rc < 0)
		return rc;
	build_gdt_tss(&vm->mem);
	build_idt(&vm->mem);
	rc = write_params(vm, args);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		rc = setup_vcpu(vm->vcpus[i], entry);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* [gpa, gpa + len) of the guest against the same range as built: -EIO
 * with a sentence naming what and where, if they differ. */
static int compare(const struct guest_mem *built, struct vm *vm, const char *what, uint64_t gpa,
		   uint64_t len)
{
	const uint8_t *want = mem_host(built, gpa, len), *have = mem_host(&vm->mem, gpa, len);
	uint64_t off = 0;

	if (!have)
		return err_set(-EIO, "the guest's %s is not in its memory", what);
	if (!memcmp(want, have, len))
		return 0;
	while (want[off] == have[off])
		off++;
	return err_set(-EIO, "the guest's %s differs from what ferry built at %#llx", what,
		       (unsigned long long)(gpa + off));
}

/* What loader_load wrote that no one may change: the code segments of
 * image, the page tables, GDT, TSS and IDT. */
static int compare_all(const struct guest_mem *built, struct vm *vm, const void *image)
{
	const Elf64_Ehdr *eh = image;
	int rc = compare(built, vm, "page tables", FERRY_PT_GPA, FERRY_PT_END - FERRY_PT_GPA);

	if (rc == 0)
		rc = compare(built, vm, "GDT", FERRY_GDT_GPA, FERRY_PAGE_SIZE);
	if (rc == 0)
		rc = compare(built, vm, "TSS", FERRY_TSS_GPA, 3 * FERRY_PAGE_SIZE);
	if (rc == 0)
		rc = compare(built, vm, "IDT", FERRY_IDT_GPA, FERRY_PAGE_SIZE);
	for (unsigned i = 0; rc == 0 && i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)image + eh->e_phoff) + i;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
			rc = compare(built, vm, "code", ph->p_paddr, ph->p_filesz);
	}
	return rc;
}

int loader_check_intact(struct vm *vm)
{
	uint8_t *buf = calloc(1, FERRY_IMAGE_END);
	struct guest_mem built = { .size = vm->mem.size, .nr_regions = 1 };
	int rc;

	if (!buf)
		return err_set(-ENOMEM, "out of memory");
	built.regions[0] = (struct mem_region){ .size = FERRY_IMAGE_END, .host = buf };
	load_segments(&built, guest_image);
	rc = build_page_tables(&built);
	build_gdt_tss(&built);
	build_idt(&built);
	if (rc == 0)
		rc = compare_all(&built, vm, guest_image);
	free(buf);
	return rc;
}

int loader_load_builtin(struct vm *vm, const char *spec)
{
	struct ferry_workload_args args;
	int rc = workload_parse(spec, vm->mem.size, &args);

	return rc < 0 ? rc : loader_load(vm, guest_image, guest_image_len, &args);
}
