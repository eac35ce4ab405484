final class MappingErrorUsedRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.unmapWithoutMapping, .syncWithoutMapping]

    static let description = RuleDescription(
        id: "mapping-error-used", name: "Failed mapping used", severity: .error,
        summary: "A map failed (DMA_MAPPING_ERROR) and the driver later unmapped or synced it: dma_mapping_error() was not checked.",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "ffffffffffffffff", size: 4096, phys: "100000"),
                Example.unmap("1.1", dir: "TO_DEVICE", dma: "ffffffffffffffff", size: 4096),
            ]),
            RuleExample(triggers: false, [
                Example.probe,
                Example.map("1.0", dir: "TO_DEVICE", dma: "ffffffffffffffff", size: 4096, phys: "100000"),
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        let event: DMAEvent
        let failed: DMAEvent?
        switch fact {
        case .unmapWithoutMapping(let e, .mappingError(let f)), .syncWithoutMapping(let e, .mappingError(let f)):
            event = e
            failed = f
        default:
            return
        }
        let when = failed.map { " (the map at \(formatSeconds($0.timestamp)) s failed)" } ?? ""
        context.report(Self.description, event: event,
                       message: "\(event.kind.name) of a failed mapping\(when): the driver did not check dma_mapping_error() and used DMA_MAPPING_ERROR as an address",
                       history: (failed.map { [$0] } ?? []) + [event], shape: Describe.shape(event))
    }
}
