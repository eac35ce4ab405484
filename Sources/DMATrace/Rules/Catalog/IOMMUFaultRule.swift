final class IOMMUFaultRule: DMARule {
    static let interests: Set<ModelFact.Kind> = [.iommuFault]

    static let description = RuleDescription(
        id: "iommu-fault", name: "IOMMU page fault", severity: .error,
        summary: "The device accessed an IOVA the IOMMU had no mapping for (use after unmap, or a bad address).",
        examples: [
            RuleExample(triggers: true, severity: .error, [
                Example.probe,
                "1.0 io_page_fault: IOMMU:e1000e \(Example.dev) iova=0x00000000fffff000 flags=0x0020",
            ]),
            RuleExample(triggers: false, [
                Example.probe,
            ]),
        ])

    func observe(_ fact: ModelFact, _ context: RuleContext) {
        guard case .iommuFault(let e, let f) = fact else { return }
        context.report(Self.description, event: e,
                       message: "IOMMU page fault: the device accessed iova \(hex(f.iova)) (flags \(hex(UInt64(bitPattern: f.flags)))) that was not mapped",
                       history: [e], shape: "iommu-fault|\(f.driver)")
    }
}
