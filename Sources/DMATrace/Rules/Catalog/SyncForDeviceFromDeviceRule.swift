final class SyncForDeviceFromDeviceRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.synced]

    static let description = RuleDescription(
        id: "sync-for-device-from-device", name: "Device write-only memory synced for the device", severity: .error,
        summary: "A FROM_DEVICE mapping is synced for the device with another direction, as if the CPU had filled it.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: false, dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            // e1000e's receive buffers: sync for the CPU, then give back for the device.
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.2", cpu: false, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    static func applies(_ m: StreamingMapping, _ s: SyncObservation) -> Bool {
        s.sync.target == .device && m.direction == .fromDevice && s.sync.direction != .fromDevice
    }

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .synced(let m, let s) = fact, Self.applies(m, s) else { return }
        context.report(Self.description, event: s.event,
                       message: "syncs device write-only DMA memory to the device [mapped with FROM_DEVICE] [synced with \(Describe.dir(s.sync.direction))] for the \(Describe.mapping(m))",
                       history: m.history, shape: Describe.shape(m))
    }
}
