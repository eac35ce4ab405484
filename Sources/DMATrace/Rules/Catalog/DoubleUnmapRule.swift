final class DoubleUnmapRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmapWithoutMapping]

    static let description = RuleDescription(
        id: "double-unmap", name: "Double unmap", severity: .error,
        summary: "An address is unmapped again after its mapping was already unmapped, with no map in between.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.2", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.map("1.2", dir: "TO_DEVICE", dma: "100000", size: 4096),
                Example.unmap("1.3", dir: "TO_DEVICE", dma: "100000", size: 4096),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .unmapWithoutMapping(let e, .alreadyReleased(let release, let original)) = fact else { return }
        let complete = e.device.map { context.model.historyComplete($0) } ?? false
        let caveat = complete ? [] : ["the device was active before the trace: a mapping of the same address made before tracing began would make this unmap legitimate"]
        context.report(Self.description, severity: complete ? nil : .warning, event: e,
                       message: "\(e.kind.name) of \(e.kind.details) releases memory already unmapped at \(formatSeconds(release.timestamp)) s and not mapped since",
                       history: (original.map { [$0] } ?? []) + [release, e], shape: Describe.shape(e), caveats: caveat,
                       scope: .anyCPUBefore)
    }
}
