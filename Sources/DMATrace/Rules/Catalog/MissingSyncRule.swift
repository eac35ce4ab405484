/// Ownership broken where the trace can show it: the CPU took a buffer twice
/// without giving it back, or a SKIP_CPU_SYNC mapping was never synced.
final class MissingSyncRule: DMARule {
    static let interests: Set<ModelFact.Kind> = ModelFact.Kind.anyUnmap.union([.synced])

    static let description = RuleDescription(
        id: "missing-sync", name: "Missing or out-of-order sync", severity: .warning,
        summary: "Buffer ownership is broken: sync_for_cpu twice without sync_for_device, or a SKIP_CPU_SYNC mapping the driver never synced.",
        examples: [
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.2", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("0.8", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.sync("0.85", cpu: true, dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.unmap("0.9", dir: "FROM_DEVICE", dma: "f8000", size: 64),
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096, attrs: "SKIP_CPU_SYNC"),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "100000", size: 4096, attrs: "SKIP_CPU_SYNC"),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.2", cpu: false, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.3", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.4", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            // Two partial syncs of different received fragments (page_pool).
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 1024),
                Example.sync("1.2", cpu: true, dir: "FROM_DEVICE", dma: "100800", size: 1024),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    /// Notes about unsynced SKIP_CPU_SYNC mappings, one group per device and shape: a page_pool
    /// releases hundreds of pages that never received data at teardown.
    private var noteGroups: [String: (first: StreamingMapping, unmap: DMAEvent, message: String, count: Int)] = [:]
    private var noteOrder: [String] = []

    private static let bounceNote = " Under swiotlb bouncing this means stale data: the bounce buffer is only copied at map, unmap and sync."

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        switch fact {
        case .synced(let m, let s) where s.sync.target == .cpu && s.alreadyCPUOwned && m.deviceMayWrite:
            context.report(Self.description, event: s.event,
                           message: "\(Describe.syncName(s.sync)) again with no sync_for_device since the previous sync_for_cpu of the same bytes, for the \(Describe.mapping(m)): "
                               + "either the device wrote the buffer while the CPU owned it, or the CPU reads data the device never handed back."
                               + (m.bounced ? Self.bounceNote : ""),
                           history: m.history, shape: Describe.shape(m) + "|cpu-twice")
        case .unmapped(let m, let unmap, _, _, _, _):
            judgeSkipCPUSync(m, unmap: unmap, context)
        default:
            return
        }
    }

    private func judgeSkipCPUSync(_ m: StreamingMapping, unmap: DMAEvent, _ context: RuleContext) {
        guard m.attrs.contains(.skipCPUSync) else { return }
        // An importer's view of a shared buffer whose exporter synced the same memory for the CPU
        // while it was mapped: the pages were handed back (same physical memory, same cache lines).
        if !m.bounced, m.sharedWith.contains(where: { other in
            other.history.contains { e in
                if case .sync(let s) = e.kind, s.target == .cpu { return e.timestamp >= m.mappedAt }
                return false
            }
        }) { return }
        let observable = context.model.profile(of: m.device)?.syncsObservable ?? false
        let unmapSkips: Bool
        switch unmap.kind {
        case .unmap(let u): unmapSkips = u.attrs.contains(.skipCPUSync)
        case .unmapSG(let u): unmapSkips = u.attrs.contains(.skipCPUSync)
        default: unmapSkips = false
        }
        let blind = " The kernel elides syncs before the tracepoint on this device's path, so the trace cannot tell whether the driver synced."
        if m.deviceMayWrite, unmapSkips, m.syncsForCPU == 0 {
            // page_pool maps with SKIP_CPU_SYNC, syncs for the device itself, and may
            // release pages that never received data: only a mapping never synced at all is suspect.
            // Over a coherent allocation's pages and not bounced, the CPU reaches the memory only
            // through the uncached coherent mapping: there is nothing for a sync to do.
            let severity: Severity = !observable || m.syncsForDevice > 0 || (m.sharesCoherentMemory && !m.bounced) ? .note : .warning
            let message = "the \(Describe.mapping(m)) was mapped and unmapped with SKIP_CPU_SYNC and never synced for the CPU: whatever the device wrote is not guaranteed visible to the CPU."
                + (m.syncsForDevice > 0 ? " (It was synced for the device, so it may simply never have received data.)" : "")
                + (m.sharesCoherentMemory && !m.bounced ? " It maps the pages of a live coherent allocation (a dma-buf export), which the CPU reaches only through the uncached coherent mapping." : "")
                + (m.bounced ? Self.bounceNote : "") + (observable ? "" : blind)
            if severity == .note {
                let key = m.device + "|" + Describe.shape(m) + "|skip-cpu"
                if let g = noteGroups[key] {
                    noteGroups[key] = (g.first, g.unmap, g.message, g.count + 1)
                } else {
                    noteGroups[key] = (m, unmap, message, 1)
                    noteOrder.append(key)
                }
                return
            }
            context.report(Self.description, severity: severity, event: unmap, message: message,
                           history: m.history + [unmap], shape: Describe.shape(m) + "|skip-cpu")
        } else if m.direction == .toDevice, m.syncsForDevice == 0 {
            context.report(Self.description, severity: observable ? .warning : .note, event: unmap,
                           message: "the \(Describe.mapping(m)) was mapped with SKIP_CPU_SYNC and never synced for the device: the device may have read stale memory instead of what the CPU wrote."
                               + (m.bounced ? Self.bounceNote : "") + (observable ? "" : blind),
                           history: m.history + [unmap], shape: Describe.shape(m) + "|skip-dev")
        }
    }

    func finish(_ context: RuleContext) {
        for key in noteOrder {
            guard let g = noteGroups[key] else { continue }
            let prefix = g.count > 1 ? "\(g.count) mappings like this: " : ""
            context.report(Self.description, severity: .note, event: g.unmap, device: g.first.device,
                           message: prefix + g.message, history: g.first.history + [g.unmap],
                           shape: Describe.shape(g.first) + "|skip-cpu", occurrences: g.count)
        }
    }
}
