/* PVH entry for booting the ferry guest under another VMM (QEMU -kernel,
 * -M microvm): what ferry's loader does from the outside (vm/loader.c), this
 * does from the inside. Entered in 32-bit protected mode, paging off, with
 * ebx = struct hvm_start_info. Module 0 must be the parameter page (struct
 * ferry_params, made by bench/guest-params). Sets up identity page tables
 * (2 MiB, user, A/D pre-set), the same GDT and TSS with I/O bitmap, long
 * mode, XCR0, and enters _start at CPL 3 as vCPU 0. */
#define PARAMS 0x1000
#define GDT    0x5000
#define TSS    0x6000
#define PT     0x10000
#define STACK0 (0x300000 + 0x10000)

	.section .note.Xen, "a"
	.align 4
	.long 4, 4, 18 /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start

	.section .text.pvh, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cld
	/* Parameter page: copy module 0 (4 KiB at most). */
	mov 12(%ebx), %ecx          /* nr_modules */
	test %ecx, %ecx
	jz no_params
	mov 16(%ebx), %esi          /* modlist_paddr */
	mov 8(%esi), %ecx           /* size */
	mov (%esi), %esi            /* paddr */
	cmp $4096, %ecx
	jbe 1f
	mov $4096, %ecx
1:	mov $PARAMS, %edi
	rep movsb

	/* Page tables: PML4 -> PDPT -> one PD per GiB, 2 MiB pages (P W U A D PS). */
	mov $PT, %edi
	xor %eax, %eax
	mov $(0x80000 / 4), %ecx
	rep stosl
	movl $(PT + 0x1000 + 0x27), PT          /* P W U A */
	mov PARAMS + 16, %ecx                   /* mem_bytes, low half */
	mov PARAMS + 20, %edx
	shrd $21, %edx, %ecx                    /* 2 MiB pages */
	mov $PT + 0x2000, %edi                  /* first PD */
	xor %eax, %eax
2:	mov %eax, %edx
	shl $21, %edx
	or $0xe7, %edx
	mov %edx, (%edi, %eax, 8)
	mov %eax, %edx
	shr $11, %edx                           /* high half of (i << 21) */
	mov %edx, 4(%edi, %eax, 8)
	inc %eax
	cmp %ecx, %eax
	jb 2b
	add $511, %eax                          /* PDs in use -> PDPT entries */
	shr $9, %eax
	xor %ecx, %ecx
3:	mov %ecx, %edx
	shl $12, %edx
	add $(PT + 0x2000 + 0x27), %edx
	mov %edx, PT + 0x1000(, %ecx, 8)
	inc %ecx
	cmp %eax, %ecx
	jb 3b

	/* GDT and TSS, as ferry's loader writes them. */
	mov $gdt_template, %esi
	mov $GDT, %edi
	mov $(7 * 8), %ecx
	rep movsb
	mov $TSS, %edi
	xor %eax, %eax
	mov $(0x3000 / 4), %ecx
	rep stosl
	movw $0x68, TSS + 0x66                  /* I/O bitmap offset */
	mov $(TSS + 0x68), %edi
	mov $0xff, %al
	mov $8193, %ecx
	rep stosb
	andb $~(1 << (0xe9 % 8)), TSS + 0x68 + 0xe9 / 8
	andb $~(0xf << (0xf0 % 8)), TSS + 0x68 + 0xf0 / 8

	/* Long mode. */
	lgdt gdt_ptr
	mov $1, %eax                            /* XSAVE only if the CPU has it */
	cpuid
	mov $0x620, %eax                        /* PAE OSFXSR OSXMMEXCPT */
	bt $26, %ecx
	jnc 5f
	or $0x40000, %eax                       /* OSXSAVE */
5:	mov %eax, %cr4
	mov $PT, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx                   /* EFER: SCE LME NXE */
	rdmsr
	or $0x901, %eax
	wrmsr
	mov $0x80050033, %eax                   /* PG AM WP NE ET MP PE */
	mov %eax, %cr0
	ljmp $0x08, $long_mode

no_params:
	mov $0xe9, %dx
	mov $'P', %al
	out %al, %dx
4:	hlt
	jmp 4b

	.code64
long_mode:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x28, %ax
	ltr %ax
	mov %cr4, %rax
	bt $18, %rax
	jnc 6f
	mov $0xd, %eax                          /* XCR0: x87 SSE AVX, as supported */
	xor %ecx, %ecx
	cpuid
	and $7, %eax
	xor %ecx, %ecx
	xor %edx, %edx
	xsetbv
6:
	pushq $0x23                             /* SS */
	pushq $STACK0                           /* RSP */
	pushq $0x3002                           /* RFLAGS: IOPL 3 */
	pushq $0x1b                             /* CS */
	pushq $_start
	xor %edi, %edi                          /* vCPU 0 */
	iretq

	.section .rodata.pvh, "a"
	.align 8
gdt_template:
	.quad 0
	.quad 0x00af9b000000ffff                /* code64, DPL 0 */
	.quad 0x00cf93000000ffff                /* data, DPL 0 */
	.quad 0x00affb000000ffff                /* code64, DPL 3 */
	.quad 0x00cff3000000ffff                /* data, DPL 3 */
	.quad 0x0000890060002068                /* 64-bit TSS at 0x6000, limit 0x2068, available (ltr marks it busy) */
	.quad 0
gdt_ptr:
	.word 7 * 8 - 1
	.long GDT
	.section .note.GNU-stack, "", @progbits
