/* The static sbx executable's entry point (docs/launch.md "Start-up time").
 *
 * A static PIE relocates itself in _start, before any constructor: every
 * page of the writable segment (.data.rel.ro, .got, .data) that holds a
 * pointer is written there, one copy-on-write fault each, and the start-up
 * code (_start, relocation, CPU feature detection, TLS set-up) faults its
 * text and read-only data in page by page. On a VM where a fault costs
 * ~12 us that is ~40 faults of every start. This stub runs first and maps
 * the text, the read-only data and the whole writable segment (through
 * .bss) with one madvise(MADV_POPULATE_READ/WRITE) each, then jumps to
 * glibc's _start with the registers and the stack exactly as the kernel
 * left them. cli/prefault.cpp does the heap and the stack later.
 *
 * Written in assembly because nothing is set up yet: no relocation applied
 * (so every address is taken rip-relative from hidden linker symbols), no
 * TLS (no stack protector), no libc. SBX_NO_PREFAULT in the environment
 * skips it, as it skips cli/prefault.cpp. A kernel without
 * MADV_POPULATE_* (< 5.14) answers EINVAL: nothing happens.
 */

#define SYS_madvise 28
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23

        .hidden __executable_start
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
        /* Text and read-only data: from the ELF header to the writable
         * segment (the page holding .tdata, where that segment begins). */
        lea     __executable_start(%rip), %rdi
        lea     __preinit_array_start(%rip), %rsi
        and     $-4096, %rsi
        sub     %rdi, %rsi
        mov     $MADV_POPULATE_READ, %edx
        mov     $SYS_madvise, %eax
        syscall

        /* The writable segment, while relocation still may write it. */
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
