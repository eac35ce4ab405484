final class CoherentLeakRule: DMARule {
    static let interests: Set<ModelFact.Kind> = []

    static let description = RuleDescription(
        id: "coherent-leak", name: "Coherent allocation never freed", severity: .warning,
        summary: "A dma_alloc_* allocation is still live at the end of the trace: a leak when the driver tore the device down, otherwise a note.",
        examples: [
            // The driver frees its probe-time ring (teardown) but not a buffer it allocated later.
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.alloc("1.2", dma: "f4000", size: 4096, virt: "0xffff8880000f4000"),
                Example.free("2.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
            // Freeing one probe-time scratch buffer while the ring stays is no teardown.
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
                Example.probe2,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.free("2.0", dma: "f2000", size: 4096, virt: "0xffff8880000f2000"),
            ]),
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.free("2.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {}

    func finish(_ context: RuleContext) {
        var groups: [String: [CoherentAllocation]] = [:]
        for a in context.model.outstandingAllocations() { groups[a.device, default: []].append(a) }
        for (device, allocations) in groups.sorted(by: { $0.key < $1.key }) {
            if let evidence = context.model.profile(of: device)?.teardownEvidence {
                for a in allocations {
                    context.report(Self.description, event: a.allocEvent, device: device,
                                   message: "the \(Describe.allocation(a)) was never freed although the driver released the device (\(evidence)): a leak",
                                   history: a.history, shape: "coherent|\(a.api.rawValue)|\(a.size)", scope: .anyCPUAfter)
                }
            } else {
                let first = allocations[0]
                let total = allocations.reduce(UInt64(0)) { $0 &+ $1.size }
                context.report(Self.description, severity: .note, event: first.allocEvent, device: device,
                               message: "\(allocations.count) coherent allocation(s), \(total) bytes, still live when the trace ended (rings and queues live as long as the driver is bound); the first: \(Describe.allocation(first))",
                               history: first.history, shape: "coherent-outstanding", occurrences: allocations.count,
                               scope: .anyCPUAfter)
            }
        }
    }
}
