/// Every rule, in the order reports list them. Adding a rule: one type, one line here.
public enum RuleRegistry {
    static var all: [DMARule.Type] { [
        DoubleMappingRule.self,
        StreamingOverCoherentRule.self,
        DMAAddressReuseRule.self,
        UnmapUnknownRule.self,
        DoubleUnmapRule.self,
        UnmapSizeMismatchRule.self,
        UnmapDirectionMismatchRule.self,
        UnmapWrongFunctionRule.self,
        UnmapSGCountMismatchRule.self,
        UnmapSGListMismatchRule.self,
        FreeSizeMismatchRule.self,
        FreeAddressMismatchRule.self,
        FreeUnknownRule.self,
        MappingErrorUsedRule.self,
        SyncUnknownRule.self,
        SyncOutOfRangeRule.self,
        SyncDirectionMismatchRule.self,
        SyncForCPUToDeviceRule.self,
        SyncForDeviceFromDeviceRule.self,
        SyncSGCountMismatchRule.self,
        MissingSyncRule.self,
        MappingLeakRule.self,
        CoherentLeakRule.self,
        CoherentNoStructPageRule.self,
        CachelineSharingRule.self,
        IOMMUFaultRule.self,
        TraceAnomalyRule.self,
        // Last: it downgrades what the others found.
        EventsLostRule.self,
    ] }

    public static var descriptions: [RuleDescription] { all.map { $0.description } }

    public static func description(of id: String) -> RuleDescription? {
        all.first { $0.description.id == id }?.description
    }

    static func instantiate(enabled: (String) -> Bool) -> [DMARule] {
        all.filter { enabled($0.description.id) }.map { $0.init() }
    }
}
