/* sbx_clone3_run(struct clone_args *args, size_t size, int (*fn)(void *),
 *                void *arg): clone3(args, size); the child, on the stack
 * args->stack names, calls fn(arg) and exits with its value (SYS_exit: the
 * child is its own thread group). Returns the child's pid in the parent,
 * or -errno. Needed because a CLONE_VM child cannot return into the
 * caller's frame: that frame is the parent's, on the parent's stack.
 */
#ifdef __CET__
#include <cet.h> /* the GNU property note: the executable keeps its CET marking */
#else
#define _CET_ENDBR
#endif

#define SYS_clone3 435
#define SYS_exit 60

        .text
        .globl sbx_clone3_run
        .hidden sbx_clone3_run
        .type sbx_clone3_run, @function
sbx_clone3_run:
        .cfi_startproc
        _CET_ENDBR
        movq %rdx, %r8          /* fn and arg survive the system call */
        movq %rcx, %r9
        movl $SYS_clone3, %eax
        syscall
        testq %rax, %rax
        jz 1f
        ret
1:
        .cfi_undefined rip
        xorl %ebp, %ebp         /* outermost frame of the child */
        movq %r9, %rdi
        call *%r8
        movl %eax, %edi
        movl $SYS_exit, %eax
        syscall
        hlt
        .cfi_endproc
        .size sbx_clone3_run, .-sbx_clone3_run

        .section .note.GNU-stack,"",@progbits
