# The PVH entry. QEMU starts it in 32-bit protected mode with paging off and %ebx
# holding the physical address of the hvm_start_info structure. It maps the first 4 GiB
# at their own address and the first GiB again at -2 GiB (where the kernel is linked)
# with 2 MiB pages, enters long mode (5-level paging if the CPU has LA57: CR4.LA57 can
# only be set while paging is off), zeroes .bss, and calls kernel_main(start_info).
# (No braces in this file: global_asm! would take them for placeholders.)

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                         # name size: "Xen" and its NUL
    .long 4                         # descriptor size
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4

    .section .boot.text, "ax", @progbits
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    movl $boot_tables, %edi         # the tables are not part of the file: zero them
    movl $boot_tables_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    movl $boot_pd, %edi             # 2048 PD entries: 4 GiB of 2 MiB pages
    movl $0x83, %eax                # present, writable, page size
    movl $2048, %ecx
.Lfill_pd:
    movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop .Lfill_pd

    movl $boot_pd + 3, %eax         # PDPT (low half): one PD per GiB
    movl %eax, boot_pdpt_low
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 8
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 16
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 24
    movl $boot_pd + 3, %eax         # PDPT (top): entry 510 is -2 GiB, the first GiB
    movl %eax, boot_pdpt_high + 510 * 8
    movl $boot_pdpt_low + 3, %eax
    movl %eax, boot_pml4
    movl $boot_pdpt_high + 3, %eax
    movl %eax, boot_pml4 + 511 * 8

    movl $boot_pml4, %esi           # the root: the PML4, or a PML5 with LA57
    movl %ebx, %ebp                 # CPUID overwrites %ebx
    xorl %eax, %eax
    cpuid
    cmpl $7, %eax
    jb .Lroot_ready
    movl $7, %eax
    xorl %ecx, %ecx
    cpuid
    testl $0x10000, %ecx            # CPUID.(7,0):ECX.LA57
    jz .Lroot_ready
    movl $boot_pml4 + 3, %eax       # PML5: entries 0 and 511 both lead to the PML4
    movl %eax, boot_pml5
    movl %eax, boot_pml5 + 511 * 8
    movl %cr4, %eax
    orl $0x1000, %eax               # CR4.LA57
    movl %eax, %cr4
    movl $boot_pml5, %esi
.Lroot_ready:
    movl %ebp, %ebx
    movl %cr4, %eax                 # PAE
    orl $0x20, %eax
    movl %eax, %cr4
    movl %esi, %cr3
    movl $0xC0000080, %ecx          # EFER.LME
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax                 # PG and PE
    orl $0x80000001, %eax
    movl %eax, %cr0
    lgdt boot_gdt_pointer
    ljmp $0x08, $boot_long_mode

    .code64
boot_long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $kernel_entry, %rax
    jmpq *%rax

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9B000000FFFF        # 0x08: 64-bit code
    .quad 0x00CF93000000FFFF        # 0x10: data
boot_gdt_pointer:
    .word boot_gdt_pointer - boot_gdt - 1
    .long boot_gdt

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_tables:
boot_pml5:
    .skip 4096
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096 * 4
boot_tables_end:

    .text
kernel_entry:
    movabsq $__bss_start, %rdi
    movabsq $__bss_end, %rcx
    subq %rdi, %rcx
    shrq $3, %rcx
    xorl %eax, %eax
    rep stosq
    movabsq $kernel_stack_top, %rsp
    movl %ebx, %edi                 # start_info, zero-extended
    call kernel_main
    ud2

    .section .bss.kernel_stack, "aw", @nobits
    .balign 16
    .skip 0x20000
kernel_stack_top:
