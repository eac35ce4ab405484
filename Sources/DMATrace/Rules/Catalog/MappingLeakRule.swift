/// Streaming mappings still live when the trace ends, told apart from
/// long-lived buffers and unmaps skipped by design.
final class MappingLeakRule: DMARule {
    static let interests: Set<ModelFact.Kind> = ModelFact.Kind.anyUnmap

    static let description = RuleDescription(
        id: "mapping-leak", name: "Streaming mapping never unmapped", severity: .warning,
        summary: "A streaming mapping is still live at the end of the trace: a leak when the trace shows the driver tearing the device down, otherwise a note.",
        examples: [
            // The driver frees its ring (teardown) but one mapping stays.
            RuleExample(triggers: true, severity: .warning, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.sync("1.1", cpu: true, dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.free("2.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
            // Still running at the end: outstanding, not a leak.
            RuleExample(triggers: true, severity: .note, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.free("2.0", dma: "f0000", size: 4096, virt: "0xffff8880000f0000"),
            ]),
        ])

    /// The device by its state's identity, which lives as long as the analysis: hashing its
    /// name cost a String hash on every unmap of every device that must unmap.
    private struct Shape: Hashable { let device: ObjectIdentifier; let function: StreamingMapping.Function; let direction: DMADirection?; let size: UInt64 }
    /// Longest lifetime of each shape's completed mappings, and how many completed.
    private var lifetimes: [Shape: (max: UInt64, count: Int)] = [:]

    private static func shape(_ m: StreamingMapping) -> Shape {
        Shape(device: ObjectIdentifier(m.deviceState), function: m.function, direction: m.direction, size: m.size)
    }

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        // Lifetimes only matter on devices that must unmap (outlived() ignores the others).
        if case .unmapped(let m, let unmap, _, _, _, _) = fact, !m.deviceState.profile.mayskipUnmaps {
            let life = unmap.timestamp &- m.mappedAt
            // One lookup: the entry is changed where it is.
            func note(_ e: inout (max: UInt64, count: Int)) {
                e.max = max(e.max, life)
                e.count += 1
            }
            note(&lifetimes[Self.shape(m), default: (0, 0)])
        }
    }

    private func outlived(_ m: StreamingMapping, end: UInt64, _ context: RuleContext) -> Bool {
        guard !(context.model.profile(of: m.device)?.mayskipUnmaps ?? false),
              let siblings = lifetimes[Self.shape(m)], siblings.count >= 16 else { return false }
        return end &- m.mappedAt > 50 * max(siblings.max, 1_000_000)
    }

    func finish(_ context: RuleContext) {
        let end = context.model.traceEnd
        // Judge each mapping against its own shape's siblings, then report per
        // (device, function, direction, verdict) so thousands of by-design notes stay one line.
        struct Group: Hashable {
            let device: String, function: StreamingMapping.Function, direction: DMADirection?, severity: Severity, torn: Bool
            /// Replaced by a new mapping of the same memory without an unmap (dma-direct, by design).
            let abandoned: Bool
        }
        var groups: [Group: [StreamingMapping]] = [:]
        var order: [Group] = []
        for m in context.model.outstandingMappings() {
            let shape = Self.shape(m)
            let torn = (context.model.profile(of: m.device)?.tornDown ?? false)
            // Outliving its siblings is no evidence of a leak on its own (a receive ring goes quiet
            // after a burst): only a teardown the trace shows makes it one.
            let g = Group(device: m.device, function: shape.function, direction: shape.direction,
                          severity: torn ? .warning : .note, torn: torn, abandoned: m.superseded)
            if groups[g] == nil { order.append(g) }
            groups[g, default: []].append(m)
        }
        for g in order {
            let mappings = groups[g]!
            let shape = Self.shape(mappings[0])
            let profile = context.model.profile(of: mappings[0].device)
            let torn = g.torn
            let oldest = mappings[0]
            let age = end &- oldest.mappedAt
            let siblings = lifetimes[shape]
            let outlived = !torn && outlived(oldest, end: end, context)
            let count = mappings.count
            let what = count == 1 ? "the \(Describe.mapping(oldest)) was" : "\(count) mappings like the \(Describe.mapping(oldest)) were"
            let verb = oldest.isAllocation ? "freed" : "unmapped"
            var severity = Severity.note
            var reason: String
            if torn {
                severity = .warning
                reason = "the driver released the device (\(profile?.teardownEvidence ?? "teardown")), so nothing will ever release it: a leak"
            } else if outlived, let siblings {
                reason = "all \(siblings.count) finished mappings of this shape were released within \(formatSeconds(siblings.max)) s, this one stayed \(formatSeconds(age)) s; "
                    + "the trace shows no teardown, and long-lived buffers such as receive rings stay mapped while the interface is up, so it is only outstanding"
            } else if g.abandoned {
                reason = "its memory was mapped again later without an unmap; the device uses dma-direct without bouncing, where dma_need_unmap() is false and drivers may skip unmaps by design (7.x NVMe does); under an IOMMU or swiotlb this would leak"
            } else if profile?.mayskipUnmaps ?? false {
                reason = "still outstanding when the trace ended (long-lived buffers such as receive rings stay mapped while the interface is up); on this dma-direct device without bouncing dma_need_unmap() is false, so the driver may also skip the unmap by design (7.x NVMe does); under an IOMMU or swiotlb that would leak"
            } else {
                reason = "still outstanding when the trace ended; long-lived buffers such as receive rings stay mapped while the interface is up"
            }
            context.report(Self.description, severity: severity, event: oldest.mapEvent, device: oldest.device,
                           message: "\(what) never \(verb): \(reason)",
                           history: oldest.history, shape: Describe.shape(oldest), occurrences: count,
                           scope: .anyCPUAfter)
        }
    }
}
