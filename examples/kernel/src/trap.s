# Exception entry, probes and the way to ring 3.
# (No braces in this file: global_asm! would take them for placeholders.)

# One stub per exception vector: a dummy error code where the CPU pushes none, the
# vector, then the common path. It saves the registers as a TrapFrame (trap.rs), calls
# trap_dispatch(&mut TrapFrame), and returns with iretq to whatever the frame then says:
# that is how a probe resumes at its fixup and how ring 3 comes back to the kernel.
    .macro trap_stub vector, code
    .text
trap_stub_\vector:
    .if \code == 0
    pushq $0
    .endif
    pushq $\vector
    jmp trap_common
    .section .rodata.trap_stubs, "a", @progbits
    .quad trap_stub_\vector
    .endm

    .section .rodata.trap_stubs, "a", @progbits
    .balign 8
    .global trap_stubs
trap_stubs:
    trap_stub 0, 0
    trap_stub 1, 0
    trap_stub 2, 0
    trap_stub 3, 0
    trap_stub 4, 0
    trap_stub 5, 0
    trap_stub 6, 0
    trap_stub 7, 0
    trap_stub 8, 1
    trap_stub 9, 0
    trap_stub 10, 1
    trap_stub 11, 1
    trap_stub 12, 1
    trap_stub 13, 1
    trap_stub 14, 1
    trap_stub 15, 0
    trap_stub 16, 0
    trap_stub 17, 1
    trap_stub 18, 0
    trap_stub 19, 0
    trap_stub 20, 0
    trap_stub 21, 1
    trap_stub 22, 0
    trap_stub 23, 0
    trap_stub 24, 0
    trap_stub 25, 0
    trap_stub 26, 0
    trap_stub 27, 0
    trap_stub 28, 0
    trap_stub 29, 1
    trap_stub 30, 1
    trap_stub 31, 0

    .text
trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi                 # 22 quadwords pushed: %rsp is 16-byte aligned
    call trap_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp                  # the vector and the error code
    iretq

# Probes: accesses that may fault on purpose. Each returns 1 if the access went through
# and 0 if it faulted; the trap handler finds the faulting instruction in probe_table
# and resumes at its fixup (as a kernel's exception table does).

# probe_read(addr: u64, out: *mut u64) -> u64
    .global probe_read
probe_read:
probe_read_access:
    movq (%rdi), %rax
    movq %rax, (%rsi)
    movl $1, %eax
    ret
probe_read_fixup:
    xorl %eax, %eax
    ret

# probe_write(addr: u64, value: u64) -> u64
    .global probe_write
probe_write:
probe_write_access:
    movq %rsi, (%rdi)
    movl $1, %eax
    ret
probe_write_fixup:
    xorl %eax, %eax
    ret

# probe_exec(addr: u64) -> u64: jumps (no call: nothing to unwind) to code that must be
# a `ret`, which returns 1 to the caller. A fetch fault resumes at probe_exec_fixup with
# the caller's return address still on top of the stack.
    .global probe_exec
probe_exec:
    movl $1, %eax
    jmpq *%rdi
    .global probe_exec_fixup
probe_exec_fixup:
    xorl %eax, %eax
    ret

    .section .rodata.probe_table, "a", @progbits
    .balign 8
    .global probe_table
probe_table:
    .quad probe_read_access, probe_read_fixup
    .quad probe_write_access, probe_write_fixup
    .global probe_table_end
probe_table_end:

# enter_user_asm(rip: u64, rsp: u64, arg: u64) -> u64 runs code in ring 3 with %rdi = arg.
# The kernel's callee-saved registers stay on its stack, whose top goes to
# user_resume_rsp; the trap handler, on any exception from ring 3, rewrites its frame to
# iretq to user_return on that stack, with %rax as it chooses.
    .text
    .global enter_user_asm
enter_user_asm:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, user_resume_rsp(%rip)
    pushq $0x1b                     # SS: user data, RPL 3
    pushq %rsi                      # RSP
    pushq $0x2                      # RFLAGS: interrupts off
    pushq $0x23                     # CS: user code, RPL 3
    pushq %rdi                      # RIP
    movq %rdx, %rdi
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %ebp, %ebp
    iretq
    .global user_return
user_return:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret

    .section .bss.user_resume_rsp, "aw", @nobits
    .balign 8
    .global user_resume_rsp
user_resume_rsp:
    .skip 8
