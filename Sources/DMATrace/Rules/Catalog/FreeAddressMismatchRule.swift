final class FreeAddressMismatchRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.freed]

    static let description = RuleDescription(
        id: "free-address-mismatch", name: "Free with a different CPU address", severity: .error,
        summary: "Coherent memory is freed with a CPU address other than the one dma_alloc_* returned.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0800"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.free("1.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .freed(let a, let free, let f) = fact else { return }
        if case .hashed(let allocated?) = a.cpuAddr, case .hashed(let freed?) = f.cpuAddr, allocated != freed {
            // %p hashes are stable within one boot: unequal hashes are unequal pointers.
            context.report(Self.description, event: free,
                           message: "frees DMA memory with a different CPU address [alloc cpu addr hash=\(String(allocated, radix: 16))] [free cpu addr hash=\(String(freed, radix: 16))] for the \(Describe.allocation(a)); the trace printed %p values hashed, and a hash is stable within one boot, so unequal hashes mean unequal addresses",
                           history: a.history, shape: "free-addr|\(a.api.rawValue)|\(a.size)")
            return
        }
        guard case .value(let allocated) = a.cpuAddr, case .value(let freed) = f.cpuAddr, allocated != freed else { return }
        context.report(Self.description, event: free,
                       message: "frees DMA memory with a different CPU address [alloc cpu addr=\(hex(allocated))] [free cpu addr=\(hex(freed))] for the \(Describe.allocation(a))",
                       history: a.history, shape: "free-addr|\(a.api.rawValue)|\(a.size)")
    }
}
