/* Guest entry. The VMM enters every vCPU here at CPL 3 with rsp at the top
 * of that vCPU's stack and edi = vCPU index. */
	.section .text.start, "ax"
	.globl _start
_start:
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	call	guest_main
1:	jmp	1b
	.section .note.GNU-stack, "", @progbits
