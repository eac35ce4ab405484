/// Live streaming mappings of the same bytes where the device may write one of them.
final class DoubleMappingRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.physicalOverlap]

    static let description = RuleDescription(
        id: "double-mapping", name: "Double mapping", severity: .error,
        summary: "Live streaming mappings overlap in physical memory while the device may write one of them.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "FROM_DEVICE", dma: "100000", size: 4096),
                Example.map("1.1", dir: "TO_DEVICE", dma: "100800", size: 512),
                Example.unmap("1.2", dir: "TO_DEVICE", dma: "100800", size: 512),
                Example.unmap("1.3", dir: "FROM_DEVICE", dma: "100000", size: 4096),
            ]),
            // Several readers of one page (AHCI during mkfs) are fine.
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.map("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.3", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .physicalOverlap(let new, let old, let bytes) = fact else { return }
        guard new.deviceMayWrite || old.deviceMayWrite else { return }
        let uncertain = new.direction == nil || old.direction == nil
        if new === old {
            let range = bytes.isEmpty ? "" : " (bytes \(hex(bytes.lowerBound))..\(hex(bytes.upperBound)))"
            context.report(Self.description, severity: uncertain ? .warning : nil, event: new.mapEvent, device: new.device,
                           message: "the \(Describe.mapping(new)) maps the same memory twice in one list\(range): "
                               + "the device may write it through either entry, and each entry's cache maintenance or bounce copy destroys the other's data",
                           history: new.history, shape: Describe.shape(new) + "|self")
            return
        }
        let sameDevice = new.device == old.device
        let where_ = sameDevice ? "the same device" : "device \(old.device)"
        let range = bytes.isEmpty ? "" : " (bytes \(hex(bytes.lowerBound))..\(hex(bytes.upperBound)))"
        context.report(Self.description, severity: uncertain ? .warning : nil, event: new.mapEvent, device: new.device,
                       message: "\(Describe.mapping(new)) overlaps the live \(Describe.mapping(old)) of \(where_)\(range): "
                           + "the device may write memory that is mapped twice, so one mapping's cache maintenance or bounce copy destroys the other's data",
                       history: old.history + new.history, stack: new.mapEvent.stack ?? old.mapEvent.stack,
                       shape: Describe.shape(new) + "|" + Describe.shape(old),
                       caveats: uncertain ? ["a direction value in the trace is invalid"] : [])
    }
}
