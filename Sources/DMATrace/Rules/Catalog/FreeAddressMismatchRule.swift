final class FreeAddressMismatchRule: DMARule {
    /// The two CPU addresses side by side when they provably differ: raw values, or %p hashes
    /// (stable within one boot, so unequal hashes mean unequal addresses).
    static func differ(_ a: TracedPointer, _ b: TracedPointer) -> String? {
        switch (a, b) {
        case (.value(let x), .value(let y)) where x != y:
            return "[alloc cpu addr=\(hex(x))] [free cpu addr=\(hex(y))]"
        case (.hashed(let x?), .hashed(let y?)) where x != y:
            return "[alloc cpu addr hash=\(String(x, radix: 16))] [free cpu addr hash=\(String(y, radix: 16))] (the trace printed %p hashed; a hash is stable within one boot, so unequal hashes mean unequal addresses)"
        default:
            return nil
        }
    }

    static let interests: Set<ModelFact.Kind> = [.freed, .unmappedByFree]

    static let description = RuleDescription(
        id: "free-address-mismatch", name: "Free with a different CPU address", severity: .error,
        summary: "dma_alloc_* memory (coherent, or pages) is freed with a CPU address other than the one its allocation returned.",
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
        // dma_free_pages of dma_alloc_pages memory: debug_dma_free_pages() compares the pages.
        if case .unmapped(let m, let free, _, _, .allocation(let api), _) = fact, api == .pages,
           case .alloc(let a) = m.mapEvent.kind, case .free(let f) = free.kind,
           let why = Self.differ(a.cpuAddr, f.cpuAddr) {
            context.report(Self.description, event: free,
                           message: "frees DMA pages with a different CPU address \(why) for the \(Describe.mapping(m))",
                           history: m.history + [free], shape: "free-addr|\(a.api.rawValue)|\(a.size)")
            return
        }
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
