/* The static sbx executable's entry point (docs/launch.md "Start-up time").
 *
 * A static PIE relocates itself in _start, before any constructor: every
 * page of the writable segment (.data.rel.ro, .got, .data) that holds a
 * pointer is written there, one copy-on-write fault each. This stub runs
 * first and maps the whole writable segment (through .bss, ~32 pages) with
 * one madvise(MADV_POPULATE_WRITE), then jumps to glibc's _start with the
 * registers and the stack exactly as the kernel left them. Nearly every page
 * of that segment is written at every start, so this pays on any machine.
 * The text and read-only data (~1,150 pages, of which a start touches a
 * few hundred) are mapped later, by cli/prefault.cpp, and only where a page
 * fault is dear.
 *
 * Written in assembly because nothing is set up yet: no relocation applied
 * (so every address is taken rip-relative from hidden linker symbols), no
 * TLS (no stack protector), no libc. SBX_NO_PREFAULT in the environment
 * skips it, as it skips cli/prefault.cpp. A kernel without
 * MADV_POPULATE_* (< 5.14) answers EINVAL: nothing happens.
 */

#define SYS_madvise 28
#define MADV_POPULATE_WRITE 23

        .hidden __preinit_array_start
        .hidden _end

        .section .rodata
no_prefault:
        .asciz  "SBX_NO_PREFAULT="

        .text
        .globl  sbx_entry
        .hidden sbx_entry
        .type   sbx_entry, @function
sbx_entry:
        mov     %rdx, %r12              /* the loader's fini function, for _start */

        /* envp = rsp + 8 (argc) + 8 * (argc + 1) (argv and its NULL) */
        mov     (%rsp), %rax
        lea     16(%rsp,%rax,8), %r8
.Lnext_env:
        mov     (%r8), %rsi
        test    %rsi, %rsi
        jz      .Lpopulate
        lea     no_prefault(%rip), %rdi
        xor     %ecx, %ecx
.Lcompare:                              /* byte by byte: never reads past a NUL */
        movzbl  (%rdi,%rcx), %eax
        test    %al, %al
        jz      .Lstart                 /* the whole prefix matched: skip */
        cmp     %al, (%rsi,%rcx)
        jne     .Lskip_env
        inc     %rcx
        jmp     .Lcompare
.Lskip_env:
        add     $8, %r8
        jmp     .Lnext_env

.Lpopulate:
        /* The writable segment (from the page holding .tdata, where it
         * begins), while relocation still may write it. */
        lea     __preinit_array_start(%rip), %rdi
        and     $-4096, %rdi
        lea     _end(%rip), %rsi
        add     $4095, %rsi
        and     $-4096, %rsi
        sub     %rdi, %rsi
        mov     $MADV_POPULATE_WRITE, %edx
        mov     $SYS_madvise, %eax
        syscall

.Lstart:
        mov     %r12, %rdx
        xor     %r12d, %r12d
        jmp     _start
        .size   sbx_entry, .-sbx_entry

        .section .note.GNU-stack, "", @progbits
