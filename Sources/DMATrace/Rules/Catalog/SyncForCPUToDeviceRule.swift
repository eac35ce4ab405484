final class SyncForCPUToDeviceRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.synced]

    static let description = RuleDescription(
        id: "sync-for-cpu-to-device", name: "Device read-only memory synced for the CPU", severity: .error,
        summary: "A TO_DEVICE mapping is synced for the CPU as if the device had written it.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.2", cpu: false, dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.3", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    static func applies(_ m: StreamingMapping, _ s: SyncObservation) -> Bool {
        s.sync.target == .cpu && m.direction == .toDevice && s.sync.direction != .toDevice
    }

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .synced(let m, let s) = fact, Self.applies(m, s) else { return }
        context.report(Self.description, event: s.event,
                       message: "syncs device read-only DMA memory for the CPU [mapped with TO_DEVICE] [synced with \(Describe.dir(s.sync.direction))] for the \(Describe.mapping(m)): the device never writes it, so the driver's idea of who writes this buffer is wrong",
                       history: m.history, shape: Describe.shape(m))
    }
}
