/// On a non-coherent device, cache maintenance works on whole lines: a
/// device-written buffer must not share a line with other live data.
final class CachelineSharingRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.sharedCacheLine]

    static let description = RuleDescription(
        id: "cacheline-sharing", name: "Cache line shared with a device-written buffer", severity: .warning,
        summary: "On a non-coherent device a FROM_DEVICE/BIDIRECTIONAL mapping shares a cache line with another live mapping (a note when the kernel bounced it).",
        examples: [
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("0.8", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.sync("0.85", cpu: true, dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.unmap("0.9", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 2),
                Example.map("1.1", dir: "FROM_DEVICE", dma: "100002", size: 1),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100002", size: 1),
                Example.unmap("1.3", dir: "TO_DEVICE", dma: "100000", size: 2),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("0.8", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.sync("0.85", cpu: true, dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.unmap("0.9", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 64),
                Example.map("1.1", dir: "FROM_DEVICE", dma: "100040", size: 64),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100040", size: 64),
                Example.unmap("1.3", dir: "TO_DEVICE", dma: "100000", size: 64),
            ]),
        ])

    private struct Candidate { let new: StreamingMapping; let neighbor: StreamingMapping; let line: UInt64; let history: [DMAEvent] }
    private var candidates: [Candidate] = []

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .sharedCacheLine(let new, let neighbor, let line) = fact, candidates.count < 4096 else { return }
        // kernel/dma/debug.c add_dma_entry(): a new mapping with SKIP_CPU_SYNC is not checked,
        // and sharing is allowed only when every mapping on the line declares CACHELINES_OVERLAP.
        guard !DMAModel.overlapExempt(new: new, existing: neighbor) else { return }
        // Coherence may only become visible later in the trace: judge at the end.
        candidates.append(Candidate(new: new, neighbor: neighbor, line: line, history: neighbor.history + [new.mapEvent]))
    }

    func finish(_ context: RuleContext) {
        var seen = Set<String>()
        for c in candidates {
            let devices = [c.new.device, c.neighbor.device]
            guard let profile = devices.lazy.compactMap({ context.model.profile(of: $0) }).first(where: { $0.coherence == .nonCoherent }) else { continue }
            let writer = c.new.deviceMayWrite ? c.new : c.neighbor
            let other = writer === c.new ? c.neighbor : c.new
            let bounced = writer.bounced
            let key = "\(writer.id)|\(other.id)"
            guard seen.insert(key).inserted else { continue }
            context.report(Self.description, severity: bounced ? .note : nil, event: c.new.mapEvent, device: c.new.device,
                           message: "the \(Describe.mapping(writer)) shares the cache line \(hex(c.line)) with the live \(Describe.mapping(other)): "
                               + "invalidating the line for the device's write throws away what the CPU wrote to the other buffer"
                               + (bounced ? "; the kernel bounced the device-written buffer through swiotlb, which hides the problem on this kernel" : ""),
                           history: c.history, shape: Describe.shape(writer) + "|" + Describe.shape(other),
                           caveats: [profile.coherenceFact.assumption])
        }
    }
}
