/* Guest entry. The VMM enters every vCPU here at CPL 3 with rsp at the top
 * of that vCPU's stack and edi = vCPU index. */
/* From guest/abi.h, which is C: */
#define FAULT_STUB_SIZE 16	/* FERRY_FAULT_STUB_SIZE */
#define CALL_FAULT	5	/* FERRY_CALL_FAULT */
#define PORT_CALL	0xf0	/* FERRY_PORT_CALL */

	.section .text.start, "ax"
	.globl _start
_start:
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	call	guest_main
1:	jmp	1b

/* Exception handlers: a stub for each of the FERRY_FAULT_VECTORS vectors
 * at FERRY_FAULT_STUBS_GPA (guest.ld checks it). The IDT's gates lead to
 * ring 3's own code segment, so the CPU stays at CPL 3 and pushes its frame
 * on the stack in use (a double fault's on its own). Each stub pushes an
 * error code where the CPU pushes none, then its vector; fault_common
 * tells the VMM, which stops the VM. */
.macro fault_stub vector
	.balign FAULT_STUB_SIZE
	.if (\vector == 8) || (\vector >= 10 && \vector <= 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vector
	jmp	fault_common
.endm

	.balign 256
	.globl fault_stubs
fault_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	fault_stub \v
	.endr

/* The frame: vector, error code, then the CPU's rip, cs, rflags, rsp, ss. */
fault_common:
	movq	(%rsp), %rsi
	movq	8(%rsp), %rdx
	movq	16(%rsp), %rcx
	movq	40(%rsp), %r8
	movl	$CALL_FAULT, %eax
	outl	%eax, $PORT_CALL
2:	jmp	2b
	.section .note.GNU-stack, "", @progbits
